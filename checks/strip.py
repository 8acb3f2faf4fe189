"""Each server's last outcomes, the strip of ticks on the server list, kept up to date by the write path.

Reading the strip from the history on every request was a window function over every check of the page's
servers (a million-check history: tens of milliseconds per page, growing with it). Instead each check that
ends appends itself to its server's RecentOutcomes row, in the transaction that ends it (Check.finish, and
the bulk ends: a batch cancelled, checks marked interrupted), and the list reads the row with its server. A
check still queued or running is the server's last_check, drawn at the end of the strip.
"""

from collections import Counter, defaultdict
from functools import cache
from typing import NamedTuple

from django.db import models
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from armclient.outcomes import Category

LENGTH = 20
CHUNK = 500
SENTINEL = 987654321  # a check id, replaced in the reversed URL by each tick's


class RecentOutcomes(models.Model):
    """A server's last LENGTH finished checks, oldest first: [id, created_at (epoch s), status, category] each."""

    server = models.OneToOneField("dashboard.Server", on_delete=models.CASCADE, primary_key=True,
                                  related_name="recent_outcomes")
    outcomes = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.server_id}: {len(self.outcomes)} outcomes"


def entry(check) -> list:
    return [check.pk, int(check.created_at.timestamp()), check.status, check.category]


def record(checks) -> None:
    """Append each of these ended checks to its server's strip. Call inside the transaction that ended them:
    the server's row is locked (checks of one server ending at once are appended in turn, none lost)."""
    by_server = defaultdict(list)
    for check in checks:
        by_server[check.server_id].append(entry(check))
    ids = sorted(by_server)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = {row.pk: row for row in RecentOutcomes.objects.select_for_update().filter(pk__in=chunk).order_by("pk")}
        new = [RecentOutcomes(server_id=pk, outcomes=[]) for pk in chunk if pk not in rows]
        for row in [*rows.values(), *new]:
            added = sorted(by_server[row.server_id], key=lambda e: (e[1], e[0]))
            row.outcomes = (row.outcomes + added)[-LENGTH:]
        if len(rows) == 1:  # a check ending on its own, the common case: a plain UPDATE, not bulk_update's CASE
            [(pk, row)] = rows.items()
            RecentOutcomes.objects.filter(pk=pk).update(outcomes=row.outcomes)
        elif rows:
            RecentOutcomes.objects.bulk_update(list(rows.values()), ["outcomes"])
        if new:
            # A server's first check ever: a racing first check of the same server is impossible (one active
            # check per server), so a plain insert.
            RecentOutcomes.objects.bulk_create(new)


class Tick(NamedTuple):  # a tuple: a page builds 1,000 (as a frozen dataclass: 0.6 ms a page, as this 0.4)
    pk: int
    code: str  # a letter of LEGEND: the outcome's category, or its status when it has none
    minute: int  # when the check was created, in minutes since the epoch (UTC)

    @property
    def kind(self) -> str:
        return legend()["kinds"][self.code][0]


def tick_kind(status: str, category: str) -> str:
    if status in ("queued", "running"):
        return "active"
    if category == Category.PASSED:
        return "ready"
    if category and Category(category).is_about_the_server:
        return "not-ready"
    return "caller"


def _what(status: str, category: str) -> str:
    from checks.models import Check

    what = Category(category).label if category else Check.Status(status).label
    return what + (" (says nothing about the server)" if tick_kind(status, category) == "caller" else "")


@cache
def _codes() -> dict[str, str]:
    """Each outcome (a category, or a status for a check without one) -> its letter, in a fixed order."""
    from checks.models import Check

    outcomes = [c.value for c in Category] + [s.value for s in Check.Status if s.value not in Category.values]
    return {outcome: chr(ord("A") + i) for i, outcome in enumerate(outcomes)}


@cache
def legend() -> dict:
    """What app.js needs to draw every strip of a page (sent once, with the page): each letter's tick kind and
    words, and the URL of a check."""
    kinds = {}
    for outcome, letter in _codes().items():
        status, category = ("", outcome) if outcome in Category.values else (outcome, "")
        kinds[letter] = [tick_kind(status, category), _what(status, category)]
    href = reverse("check_detail", args=[SENTINEL]).replace(str(SENTINEL), "{}")
    return {"href": href, "kinds": kinds}


# How the strip's group says its ticks in words, one kind after another.
SAID = {"ready": "passed", "not-ready": "not ready", "caller": "said nothing", "active": "in progress"}


DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
PAIRS = [a + b for a in DIGITS for b in DIGITS]  # 00 .. zz: two digits a step (a page encodes 2,000 numbers)


def _base36(n: int) -> str:
    if n < 0:
        return "-" + _base36(-n)
    if n < 1296:
        return DIGITS[n] if n < 36 else PAIRS[n]
    high, low = divmod(n, 1296)  # high >= 1: its digits without a leading zero
    return _base36(high) + PAIRS[low]


def encode(ticks) -> str:
    """The ticks as app.js reads them: "<letter><id>.<minute>" each, the id and the minute in base 36 and each
    after the first as the difference from the one before (a page of 100 strips: ~25 KB less than links)."""
    out, pk, minute = [], 0, 0
    for tick_pk, code, tick_minute in ticks:
        out.append(f"{code}{_base36(tick_pk - pk)}.{_base36(tick_minute - minute)}")
        pk, minute = tick_pk, tick_minute
    return " ".join(out)


def decode(text: str) -> list[tuple[int, str, int]]:
    """(check id, tick kind, minute) of each encoded tick: what app.js draws (for tests)."""
    out, pk, minute = [], 0, 0
    for token in text.split():
        ids, minutes = token[1:].split(".")
        pk, minute = pk + int(ids, 36), minute + int(minutes, 36)
        out.append((pk, legend()["kinds"][token[0]][0], minute))
    return out


class Strip(list):
    """The ticks of one server, oldest first, sent as one element: a group labelled with the ticks in words
    (and a link to the server's history) whose data-ticks app.js draws as linked, titled ticks. A page of 100
    servers has 2,000 ticks: as links they were half of its bytes."""

    history = ""  # the server's history, filtered to it
    name = ""

    def __str__(self) -> str:  # the template turns what it prints into a str first: the markup, safe
        return self.__html__()

    def words(self) -> str:
        counts = Counter(t.kind for t in self)
        said = ", ".join(f"{counts[kind]} {words}" for kind, words in SAID.items() if counts[kind])
        return f"Last {len(self)} check{'s' if len(self) != 1 else ''}: {said}"

    def __html__(self) -> str:
        if not self:
            return ""
        return mark_safe(  # noqa: S308 - the words and ticks are ours; the name is escaped
            f'<div class="strip" role="group" aria-label="{self.words()}" data-ticks="{encode(self)}">'
            f'<a href="{self.history}">All checks of {escape(self.name)}</a></div>')


def strip_of(server) -> Strip:
    """The server's strip: its recorded outcomes, then its check in flight if it has one (the newest)."""
    # Read with the server (select_related); a server never checked has no row (the accessor raises an
    # AttributeError subclass, so getattr's default applies).
    record = getattr(server, "recent_outcomes", None)
    outcomes = record.outcomes if record is not None else []
    active = server.active_check
    if active is not None:
        outcomes = outcomes[-(LENGTH - 1):]
    codes = _codes()
    ticks = Strip(Tick(pk, codes[category or status], at // 60) for pk, at, status, category in outcomes)
    if active is not None:
        ticks.append(Tick(active.pk, codes[active.status], int(active.created_at.timestamp()) // 60))
    ticks.history = _history_url() + f"?server={server.pk}"
    ticks.name = server.name
    return ticks


@cache
def _history_url() -> str:
    return reverse("history")
