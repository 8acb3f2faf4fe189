"""Keyset (cursor) pages of rows newest first on (created_at, id): the history's checks, the audit trail's events,
the alerts' delivery log.

A page costs the same at the ten-thousandth page as at the first: no COUNT(*) of everything and no OFFSET,
only "the next N rows after this one", read off an index that ends in (created_at, id). Page links carry an
opaque, signed cursor; one that was cut or edited is refused with a message and the first page is shown.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core import signing
from django.db.models import Q

SALT = "checks.keyset.cursor"
# Where a number of checks is shown it is counted up to this many, then said as "more than".
COUNT_CAP = 10_000
NEWER, OLDER = "n", "o"
BAD_CURSOR = "That page link was cut or edited, so it could not be followed; showing the newest checks."


class BadCursor(ValueError):
    pass


@dataclass
class KeysetPage:
    object_list: list
    newer: str = ""  # the cursor of the page before this one (newer checks), "" on the first page
    older: str = ""  # the cursor of the page after this one, "" on the last
    count: int = 0  # how many checks match, up to COUNT_CAP + 1
    error: str = ""
    noun: str = "check"

    @property
    def count_label(self) -> str:
        if self.count > COUNT_CAP:
            return f"more than {COUNT_CAP:,} {plural(self.noun)}"
        return f"{self.count:,} {self.noun if self.count == 1 else plural(self.noun)}"


def plural(noun: str) -> str:
    return "deliveries" if noun == "delivery" else f"{noun}s"


def encode(direction: str, check, salt: str = SALT) -> str:
    return signing.dumps([direction, check.created_at.isoformat(), check.pk], salt=salt)


def decode(cursor: str, salt: str = SALT) -> tuple[str, datetime, int]:
    try:
        direction, at, pk = signing.loads(cursor, salt=salt)
        at = datetime.fromisoformat(at)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadCursor(cursor) from None
    if direction not in (NEWER, OLDER) or type(pk) is not int or at.tzinfo is None:
        raise BadCursor(cursor)
    return direction, at, pk


def paginate(checks, size: int, cursor: str | None, *, salt: str = SALT, noun: str = "check",
             counted=None) -> KeysetPage:
    """The page of `checks` (ordered newest first) that `cursor` points at; the first page without one.

    `salt` keeps one list's cursors from being replayed on another; `noun` names the rows in the count.
    `counted`: the rows to count, when not `checks` as they are (the history counts its checks without the
    join to their servers that its rows read); unordered by default, so the planner picks the index that has
    the rows together."""
    counted = checks.order_by() if counted is None else counted
    count = counted.values("pk")[: COUNT_CAP + 1].count()
    if not cursor:
        return _first(checks, size, count, salt, noun)
    try:
        direction, at, pk = decode(cursor, salt)
    except BadCursor:
        return _first(checks, size, count, salt, noun, error=BAD_CURSOR.replace("checks", plural(noun)))
    if direction == OLDER:
        # created_at <= at bounds the index range; the OR only sorts out rows of the very same instant.
        rows = list(checks.filter(Q(created_at__lt=at) | Q(id__lt=pk), created_at__lte=at)[: size + 1])
        newer = encode(NEWER, rows[0], salt) if rows else ""
        older = encode(OLDER, rows[size - 1], salt) if len(rows) > size else ""
        return KeysetPage(rows[:size], newer, older, count, noun=noun)
    rows = list(checks.filter(Q(created_at__gt=at) | Q(id__gt=pk), created_at__gte=at)
                .order_by("created_at", "id")[: size + 1])
    if len(rows) <= size:  # reached the newest: that is the first page, full
        return _first(checks, size, count, salt, noun)
    rows = rows[:size][::-1]
    return KeysetPage(rows, encode(NEWER, rows[0], salt), encode(OLDER, rows[-1], salt), count, noun=noun)


def _first(checks, size: int, count: int, salt: str, noun: str, error: str = "") -> KeysetPage:
    rows = list(checks[: size + 1])
    older = encode(OLDER, rows[size - 1], salt) if len(rows) > size else ""
    return KeysetPage(rows[:size], "", older, count, error, noun)
