"""The pictures of readiness over time, drawn on the server as SVG: the fleet's share of servers ready per day
(the server list) and one server's band of readiness with its checks as ticks (the server's page).

The geometry is pure functions (days or segments in, rectangles out, in the SVG's own units) so it is tested
without a database; the readers at the end take what they need from the database in a fixed number of queries.

Where the fleet's daily share comes from: computed on request from checks.readiness, not kept in a per-day
table. The servers ready now are one aggregate over `Readiness` (one row per server, kept by the write path);
each day back is "now" minus that day's changes, so the only history read is the window's `ReadinessChange`
rows, grouped by day in the database (the (tenant, -at) index), and the servers registered inside the window,
grouped by day: 3 queries whatever the size of the fleet or of its history, and 90 days never read the year
before them. Measured (bench/charts.py, docs/benchmarks.md: 9,000 servers, 94,000 changes in a year, 21,000 of
them in 90 days, on PostgreSQL on a shared 2-core machine): 30-160 ms of SQL for 7-90 days, where one plain SQL
over the history took 1.2-1.7 s and a naive per-day loop 10-17 s; reading 90 rows of a per-tenant daily table
took 2 ms. The daily table was not built: it would add a write to every readiness change on one hot row per
tenant and day (every worker finishing a check that flips a server would queue on its lock), a job to close
each day and a backfill, and it could neither follow the list's filters (search, subscription, resource group)
nor leave out archived servers; the chart is loaded by htmx after the list, so its time is never the list's.
If a fleet flipped far more often than this one (the cost grows with the changes inside the window), that is
the table to add. What a day's share means: the servers ready at the end of that day (now, for today) among
the tenant's servers on the list today that were registered by then; archived servers are left out of every
day, and "stale" (ready, but not confirmed lately) is the list's judgement of now, not a state the history
keeps, so the fleet chart counts it as ready.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from armclient.outcomes import SERVER_OUTCOMES
from checks.models import Check, ReadinessChange
from checks.readiness import State

WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30
MOST_TICKS = 2000  # a server checked every hour for 90 days; older checks beyond it are not drawn

# The drawing area, in SVG user units; the SVG scales to its container's width.
WIDTH, LEFT, RIGHT = 720, 40, 8
BARS_TOP, BARS_HEIGHT = 8, 120
BAND_TOP, BAND_HEIGHT, TICKS_TOP, TICKS_HEIGHT = 8, 28, 42, 12
# A band's stretch is drawn at least this wide (about 2.5 px on a 390 px phone, 7 px at full width), whatever
# its time: a few minutes ready on a 30-day band would be under a pixel, so not seen at all.
MIN_SEGMENT = 5


def window(value) -> int:
    """The days asked for, if one of WINDOWS; else the default."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_WINDOW
    return days if days in WINDOWS else DEFAULT_WINDOW


# ---- The fleet: share of servers ready per day ---------------------------------------------------------------

@dataclass(frozen=True)
class Day:
    day: date
    ready: int
    total: int

    @property
    def share(self) -> float | None:
        """Ready / registered, or None on a day with no server."""
        return self.ready / self.total if self.total else None

    @property
    def percent(self) -> int | None:
        return None if self.share is None else round(self.share * 100)

    @property
    def words(self) -> str:
        """ "2026-11-20: 83% ready (830 of 1000)", the bar's tooltip."""
        if not self.total:
            return f"{self.day:%Y-%m-%d}: no server"
        return f"{self.day:%Y-%m-%d}: {self.percent}% ready ({self.ready} of {self.total})"


def days_back(today: date, days: int, ready_now: int, total_now: int, net_ready: dict, added: dict) -> list[Day]:
    """Each of the `days` days up to today, oldest first: walked back from now, a day's changes undone
    (`net_ready`: day -> servers that became ready minus those that stopped being) and its registrations
    (`added`: day -> servers registered) taken away to give the day before."""
    result, ready, total = [], ready_now, total_now
    for back in range(days):
        day = today - timedelta(days=back)
        result.append(Day(day, min(max(ready, 0), max(total, 0)), max(total, 0)))
        ready -= net_ready.get(day, 0)
        total -= added.get(day, 0)
    return result[::-1]


@dataclass(frozen=True)
class Bar:
    day: Day
    x: float
    width: float
    y: float
    height: float
    track_y: float
    track_height: float


def bars(days: list[Day]) -> list[Bar]:
    """One bar a day, as tall as its share of BARS_HEIGHT, over a full-height track (none on an empty day)."""
    if not days:
        return []
    slot = (WIDTH - LEFT - RIGHT) / len(days)
    gap = min(2.0, slot * 0.2)
    result = []
    for i, day in enumerate(days):
        height = round((day.share or 0) * BARS_HEIGHT, 2)
        result.append(Bar(day, x=round(LEFT + i * slot + gap / 2, 2), width=round(slot - gap, 2),
                          y=round(BARS_TOP + BARS_HEIGHT - height, 2), height=height,
                          track_y=BARS_TOP, track_height=BARS_HEIGHT if day.total else 0))
    return result


def fleet_summary(days: list[Day], window_days: int) -> str:
    """What the chart shows, in one sentence (the SVG's accessible name)."""
    known = [d for d in days if d.total]
    if not known:
        return f"Share of servers ready per day, last {window_days} days: no server registered."
    first, last = known[0], known[-1]
    low = min(known, key=lambda d: (d.share, d.day))
    return (f"Share of servers ready per day, last {window_days} days: {first.percent}% on {first.day:%Y-%m-%d}, "
            f"{last.percent}% on {last.day:%Y-%m-%d} ({last.ready} of {last.total}); "
            f"lowest {low.percent}% on {low.day:%Y-%m-%d}.")


# ---- One server: a band of readiness and its checks -----------------------------------------------------------

STALE = "stale"


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    state: str  # ready, not_ready, stale, unknown

    @property
    def label(self) -> str:
        return "Stale (ready, not confirmed lately)" if self.state == STALE else State(self.state).label


def segments(start: datetime, end: datetime, state_at_start: str, changes: list[tuple[datetime, str]],
             confirmations: list[datetime], stale_after: timedelta) -> list[Segment]:
    """The server's readiness from `start` to `end`: `changes` ((at, new state), oldest first) cut it into
    segments; a ready stretch turns stale `stale_after` past its last confirmation (the conclusive checks'
    times, the one before `start` included) until the next one."""
    cuts = [(start, state_at_start)] + [(at, to) for at, to in changes if start <= at < end]
    plain = [Segment(a, b, state) for (a, state), (b, _) in zip(cuts, [*cuts[1:], (end, "")], strict=True) if b > a]
    result: list[Segment] = []
    for segment in plain:
        pieces = _stale_pieces(segment, confirmations, stale_after) if segment.state == State.READY else [segment]
        for piece in pieces:
            if result and result[-1].state == piece.state and result[-1].end == piece.start:
                result[-1] = Segment(result[-1].start, piece.end, piece.state)
            else:
                result.append(piece)
    return result


def _stale_pieces(segment: Segment, confirmations: list[datetime], stale_after: timedelta) -> list[Segment]:
    before = [c for c in confirmations if c <= segment.start]
    inside = sorted(c for c in confirmations if segment.start < c < segment.end)
    marks = [max(before) if before else segment.start, *inside, segment.end]
    pieces = []
    for confirmed, next_mark in zip(marks, marks[1:], strict=False):
        lapse = max(confirmed + stale_after, segment.start)
        lo = max(confirmed, segment.start)
        if lapse >= next_mark:
            pieces.append(Segment(lo, next_mark, State.READY))
        else:
            pieces += [Segment(lo, lapse, State.READY), Segment(lapse, next_mark, STALE)]
    return [p for p in pieces if p.end > p.start]


@dataclass(frozen=True)
class Rect:
    x: float
    width: float
    css: str
    title: str
    widened: bool = False  # a stretch drawn wider than its time (band's MIN_SEGMENT)


def scale(start: datetime, end: datetime):
    """A function from a time in [start, end] to an x in the drawing area."""
    span = (end - start).total_seconds() or 1.0
    inner = WIDTH - LEFT - RIGHT
    return lambda t: round(LEFT + min(max((t - start).total_seconds() / span, 0.0), 1.0) * inner, 2)


def band(start: datetime, end: datetime, pieces: list[Segment]) -> list[Rect]:
    x = scale(start, end)
    edges = visible_edges([x(s.start) for s in pieces] + [x(end)] if pieces else [])
    # Times in words as the table under the band gives them: in the dashboard's time zone (TIME_ZONE).
    local = timezone.localtime
    return [Rect(a, round(b - a, 2), s.state.replace("_", "-"),
                 f"{s.label}: {local(s.start):%Y-%m-%d %H:%M} to {local(s.end):%Y-%m-%d %H:%M}",
                 widened=round(b - a, 2) > round(x(s.end) - x(s.start), 2) + 0.01)
            for s, a, b in zip(pieces, edges, edges[1:], strict=False)]


def visible_edges(edges: list[float]) -> list[float]:
    """The band's segment edges (x, left to right) moved so each segment is at least MIN_SEGMENT wide (or an
    equal share when there are too many): a few minutes ready on a 30-day band is under a pixel, so it takes
    that width from its neighbours (the others keep their places within MIN_SEGMENT each; the ends stay put)."""
    n = len(edges) - 1
    if n < 1:
        return edges
    least = min(MIN_SEGMENT, (edges[-1] - edges[0]) / n)
    moved = list(edges)
    for i in range(1, n):  # forward: a short segment pushes its right edge out
        moved[i] = max(moved[i], moved[i - 1] + least)
    for i in range(n - 1, 0, -1):  # backward: none is pushed past the end, the last ones take from the left
        moved[i] = min(moved[i], moved[i + 1] - least)
    return [round(e, 2) for e in moved]


def tick_kind(status: str, category: str) -> str:
    if status in Check.ACTIVE_STATUSES:
        return "active"
    return "passed" if category == "passed" else "failed"


def ticks(start: datetime, end: datetime, checks: list[tuple[datetime, str, str]]) -> list[Rect]:
    """One tick per check ((when, status, category)): passed, failed (anything else that ended) or active."""
    x = scale(start, end)
    local = timezone.localtime  # as the page's other times
    return [Rect(x(at), 2, tick_kind(status, category), f"{local(at):%Y-%m-%d %H:%M}: {category or status}")
            for at, status, category in checks]


def share_of_time(pieces: list[Segment]) -> dict[str, int]:
    """Per state, the percentage of the drawn time it covers."""
    total = sum((s.end - s.start).total_seconds() for s in pieces) or 1.0
    spent: dict[str, float] = {}
    for s in pieces:
        spent[s.state] = spent.get(s.state, 0) + (s.end - s.start).total_seconds()
    return {state: round(100 * seconds / total) for state, seconds in spent.items()}


def timeline_summary(pieces: list[Segment], checks: list[tuple[datetime, str, str]], window_days: int) -> str:
    shares = share_of_time(pieces)
    names = {"ready": "ready", "not_ready": "not ready", STALE: "stale", "unknown": "not known"}
    parts = ", ".join(f"{names[s]} {p}%" for s, p in sorted(shares.items(), key=lambda kv: -kv[1]))
    failed = sum(1 for _, status, category in checks if tick_kind(status, category) == "failed")
    return (f"Readiness over the last {window_days} days: {parts or 'nothing to show'}; "
            f"{len(checks)} checks, {failed} not passed.")


def gridlines() -> list[tuple[float, str]]:
    """The fleet chart's 0%, 50% and 100% lines: (y, label)."""
    return [(round(BARS_TOP + BARS_HEIGHT * (1 - p / 100), 2), f"{p}%") for p in (100, 50, 0)]


def fleet_axis(drawn: list[Bar]) -> list[tuple[float, str, str]]:
    """Date labels under the first, middle and last bars: (x, text, text-anchor)."""
    if not drawn:
        return []
    picks = [(drawn[0], "start"), (drawn[len(drawn) // 2], "middle"), (drawn[-1], "end")]
    if len(drawn) < 3:
        picks = [(drawn[0], "middle")]
    spots = [(round(b.x + (0 if a == "start" else b.width if a == "end" else b.width / 2), 2), f"{b.day.day:%b %-d}", a)
             for b, a in picks]
    return spots


def time_axis(start: datetime, end: datetime) -> list[tuple[float, str, str]]:
    """Labels under a band: its start, middle and end (now)."""
    x = scale(start, end)
    middle = start + (end - start) / 2
    local = timezone.localtime
    return [(x(start), f"{local(start):%b %-d}", "start"), (x(middle), f"{local(middle):%b %-d}", "middle"),
            (x(end), "now", "end")]


# ---- Reading: a fixed number of queries --------------------------------------------------------------------

def fleet_days(servers, tenant_id: str, days: int) -> list[Day]:
    """The share ready on each of the last `days` days among `servers` (the tenant's, filtered): 3 queries."""
    today = timezone.localdate()
    since = timezone.make_aware(datetime.combine(today - timedelta(days=days - 1), datetime.min.time()))
    now = servers.aggregate(total=Count("pk"), ready=Count("pk", filter=Q(readiness__state=State.READY)))
    # A change on day D is undone to give the end of day D-1; the window's first day needs its own changes
    # undone only to reach the day before it, which is not drawn, so `since` is the first day's start.
    changes = (ReadinessChange.objects.filter(tenant_id=tenant_id, at__gte=since, server__in=servers)
               .annotate(day=TruncDate("at")).values("day")
               .annotate(gained=Count("pk", filter=Q(to_state=State.READY) & ~Q(from_state=State.READY)),
                         lost=Count("pk", filter=Q(from_state=State.READY) & ~Q(to_state=State.READY))))
    added = servers.filter(added_at__gte=since).annotate(day=TruncDate("added_at")).values("day").annotate(
        n=Count("pk"))
    net = {row["day"]: row["gained"] - row["lost"] for row in changes}
    return days_back(today, days, now["ready"], now["total"], net, {row["day"]: row["n"] for row in added})


def server_timeline(server, days: int) -> dict:
    """What one server's band and ticks are drawn from, over the last `days` days: 4 queries."""
    end = timezone.now()
    start = end - timedelta(days=days)
    changes = server.readiness_changes.order_by("at", "id")
    before = changes.filter(at__lt=start).values_list("to_state", flat=True).last()
    inside = list(changes.filter(at__gte=start).values_list("at", "to_state"))
    mine = Check.objects.filter(server=server)
    confirmed_before = (mine.filter(category__in=SERVER_OUTCOMES, finished_at__lt=start)
                        .order_by("-finished_at").values_list("finished_at", flat=True).first())
    checks = list(mine.filter(created_at__gte=start).order_by("-created_at")
                  .values_list("created_at", "status", "category", "finished_at")[:MOST_TICKS])[::-1]
    confirmations = [f for _, _, category, f in checks if category in SERVER_OUTCOMES and f] + (
        [confirmed_before] if confirmed_before else [])
    stale_after = timedelta(hours=settings.STALE_AFTER_HOURS)
    pieces = segments(start, end, before or State.UNKNOWN, inside, confirmations, stale_after)
    drawn = [(at, status, category) for at, status, category, _ in checks]
    return {"start": start, "end": end, "segments": pieces, "checks": drawn, "truncated": len(checks) == MOST_TICKS}
