"""Re-running a check, or starting a batch, after the sign-in Azure asked for.

A run (or a batch's choice of servers: the ticked ones, or the list's filters for "Run on all") that needs the
user back at Entra ID is parked in their session; once Django's login() has signed
them in again (the `user_logged_in` signal, so the sign-in code needs to know nothing of checks), it is
queued once and removed, so a replayed callback queues nothing. A different user signing in starts from a
fresh session (login() flushes it) and finds nothing parked.
"""

import time

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, QueryDict
from django.urls import reverse
from django.utils.html import format_html

from checks.models import AlreadyActive, BatchInProgress, Check, QueueRefused, TooManyActive
from dashboard import audit
from dashboard.audit import Action
from dashboard.models import Server
from dashboard.roles import OPERATOR, has_role

PENDING_RUN_KEY = "checks_pending_run"
PENDING_BATCH_KEY = "checks_pending_batch"
# As long as a sign-in may take (dashboard.auth_views' flow age); an abandoned one does not run later.
PENDING_RUN_MAX_AGE_SECONDS = 15 * 60


def park_run(request: HttpRequest, server: Server, backup_name: str) -> None:
    _park(request, PENDING_RUN_KEY, {"server": server.pk, "backup_name": backup_name})


def park_batch(request: HttpRequest) -> None:
    """The batch form as posted (its scope, ticked servers and filters), chosen again after the sign-in."""
    _park(request, PENDING_BATCH_KEY,
          {"post": {name: values for name, values in request.POST.lists() if name != "csrfmiddlewaretoken"}})


def _park(request: HttpRequest, key: str, what: dict) -> None:
    """One thing waits at a time: the last asked for. A batch whose sign-in was abandoned must not start at
    the sign-in of a single run asked for later (nor the other way round)."""
    for other in (PENDING_RUN_KEY, PENDING_BATCH_KEY):
        request.session.pop(other, None)
    request.session[key] = {**what, "at": time.time()}


def _pending(request: HttpRequest | None, key: str) -> dict | None:
    pending = request.session.pop(key, None) if request is not None else None
    if pending is None or time.time() - pending.get("at", 0) > PENDING_RUN_MAX_AGE_SECONDS:
        return None
    return pending


@receiver(user_logged_in, dispatch_uid="checks.resume_parked_batch")
def resume_parked_batch(sender, request: HttpRequest | None, user, **kwargs) -> None:
    from checks.views.batches import chosen_servers, refusal_message, start_batch  # (the views import this)

    pending = _pending(request, PENDING_BATCH_KEY)
    if pending is None:
        return
    if not has_role(user, OPERATOR):
        messages.error(request, "Signed in again, but the batch was not started: it needs the Operator role.")
        return
    data = QueryDict(mutable=True)
    for name, values in pending["post"].items():
        data.setlist(name, values)
    servers = chosen_servers(request, data)
    if not servers:
        messages.info(request, "Signed in again, but none of the servers chosen can be checked any more.")
        return
    try:
        batch = start_batch(request, servers, data, after_sign_in=True)
    except QueueRefused as refused:  # (a batch in progress is a warning, as when asked for without a sign-in)
        level = messages.WARNING if isinstance(refused, BatchInProgress) else messages.ERROR
        messages.add_message(request, level, refusal_message(refused))
        return
    link = format_html('<a href="{}">Open batch {}</a>', reverse("batch_detail", args=[batch.pk]), batch.pk)
    n = batch.server_count
    messages.success(request, format_html("Signed in again; the batch of {} {} is starting. {}",
                                          n, "check" if n == 1 else "checks", link))


@receiver(user_logged_in, dispatch_uid="checks.resume_parked_run")
def resume_parked_run(sender, request: HttpRequest | None, user, **kwargs) -> None:
    pending = _pending(request, PENDING_RUN_KEY)
    if pending is None:
        return
    if not has_role(user, OPERATOR):  # the roles this very sign-in brought (dashboard.auth_views)
        messages.error(request, "Signed in again, but the check was not run: it needs the Operator role.")
        return
    server = Server.objects.for_tenant(user.tenant_id).active().filter(pk=pending["server"]).first()
    if server is None:  # archived meanwhile
        return
    try:
        check = Check.objects.queue(server, user, pending["backup_name"])
        audit.record(request, Action.CHECK_RUN, server, user=user, check=check.pk, backup_name=check.backup_name,
                     after_sign_in=True)
    except AlreadyActive:
        messages.info(request, f"A check of {server.name} is already in progress.")
    except TooManyActive as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, f"Signed in again; the check of {server.name} is running.")
