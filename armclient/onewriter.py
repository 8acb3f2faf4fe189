"""One write transaction at a time on SQLite, among the threads of a process and the processes that use it.

SQLite has one write lock, and a connection that finds it taken sleeps 1-100 ms before it tries again: 64 worker
threads doing so starved some of them past the 20 s busy timeout, and with two worker processes each one's
writers slept while the other wrote (at 0 ms ARM latency the machine sat half idle, and a pacing lease that
slept so held every thread of its subscription: 230 ms a check). Threads queued on a lock of our own, and
processes on a lock file next to the database (flock), are woken at once. Nothing on PostgreSQL.

Here, in the lowest layer that writes on a worker's hot path (armclient.pacing's leases), so that the checks'
writes (checks.models re-exports it) and the leases queue on the same lock. Every write transaction a worker
process makes goes through it (a SQLite writer outside it sleeps in the busy handler while the ones inside are
woken at once), so it nests: a thread already holding the place goes on (a check's end raising an alert,
whose delivery row is written by a function that queues on its own when called alone).
"""

import fcntl
import os
import threading
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

_sqlite_writer = threading.Lock()
_writer_files: dict[str, int] = {}
_held = threading.local()  # .inside: this thread is in a one_writer block (only the outermost takes and frees it)


@contextmanager
def one_writer():
    """On SQLite, hold the database's one writer's place (this process's lock, then the lock file); nothing on
    PostgreSQL. Wrap a write transaction in it (a statement outside a transaction is one), never a wait on
    anything else (ARM, a webhook): every writer of the database would wait with it."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite" or getattr(_held, "inside", False):
        yield
        return
    with _sqlite_writer, _holding():
        descriptor = _writer_file(str(connection.settings_dict["NAME"]))
        if descriptor is None:  # an in-memory database: one process
            yield
            return
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


@contextmanager
def _holding():
    _held.inside = True
    try:
        yield
    finally:
        _held.inside = False


def _writer_file(name: str) -> int | None:
    """This process's descriptor of the database's lock file (opened once); None for an in-memory database."""
    if name not in _writer_files:
        if name.startswith("file:") or ":memory:" in name or not name:
            return None
        # Group-writable (the umask permitting): the web process and the workers may run as two users of one group.
        _writer_files[name] = os.open(f"{name}.writer-lock", os.O_RDWR | os.O_CREAT, 0o660)
    return _writer_files[name]
