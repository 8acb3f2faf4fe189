"""Each server's last outcomes, the strip of ticks on the server list, kept up to date by the write path.

Reading the strip from the history on every request was a window function over every check of the page's
servers (a million-check history: tens of milliseconds per page, growing with it). Instead each check that
ends appends itself to its server's RecentOutcomes row, in the transaction that ends it (Check.finish, and
the bulk ends: a batch cancelled, checks marked interrupted), and the list reads the row with its server. A
check still queued or running is the server's last_check, drawn at the end of the strip.
"""

import time
from collections import defaultdict
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Tick:
    pk: int
    kind: str  # ready, not-ready, caller (said nothing about the server), active
    title: str


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


class Strip(list):
    """The ticks of one server, oldest first, rendered as their links by one join rather than a template loop
    (a page of 100 servers has 2,000 ticks). Every part is ours: an id, a kind and a title made of a time and
    fixed words; the title is escaped all the same."""

    def __str__(self) -> str:  # the template turns what it prints into a str first: the markup, safe
        return self.__html__()

    def __html__(self) -> str:
        href = reverse("check_detail", args=[SENTINEL]).replace(str(SENTINEL), "{}")
        tick = f'<a href="{href}" class="tick tick-{{}}" title="{{}}"></a>'
        return mark_safe("".join(tick.format(t.pk, t.kind, escape(t.title)) for t in self))  # noqa: S308


def strip_of(server) -> Strip:
    """The server's strip: its recorded outcomes, then its check in flight if it has one (the newest)."""
    # Read with the server (select_related); a server never checked has no row (the accessor raises an
    # AttributeError subclass, so getattr's default applies).
    record = getattr(server, "recent_outcomes", None)
    outcomes = record.outcomes if record is not None else []
    active = server.active_check
    if active is not None:
        outcomes = outcomes[-(LENGTH - 1):]
    ticks = Strip()
    for pk, at, status, category in outcomes:
        kind, what = _KINDS.get((status, category)) or _KINDS.setdefault(
            (status, category), (tick_kind(status, category), _what(status, category)))
        ticks.append(Tick(pk, kind, time.strftime("%Y-%m-%d %H:%M: ", time.gmtime(at)) + what))
    if active is not None:
        ticks.append(Tick(active.pk, "active", f"{active.created_at:%Y-%m-%d %H:%M}: {active.get_status_display()}"))
    return ticks


# (status, category) -> (tick kind, words of its title): a dozen pairs, worked out once each.
_KINDS: dict[tuple[str, str], tuple[str, str]] = {}
