"""`/metrics` for the tools operators already run: the fleet's readiness and the checks' outcomes in
Prometheus's text format, read from the database at scrape time (every web process answers the same).

Protected by a bearer token (METRICS_TOKEN): anyone who can scrape it sees every tenant's server names, so a
request without the token gets 401 in every mode, and with METRICS_TOKEN empty the endpoint answers 401 to all.
"""

import hmac
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import BooleanField, Case, Count, F, Max, Min, Sum, Value, When
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

from checks.models import Check, Readiness


def readiness_text() -> str:
    """The two per-server gauges in Prometheus's text format, written here rather than by prometheus_client:
    at 10,000 servers its per-sample formatting (label names checked, sorted and escaped for each of 20,000
    samples) was ~90% of a scrape (0.5 s). Same lines: labels in sorted order, values as Go prints them. The
    label values are escaped once a server, as the format says (backslash, double quote, line feed)."""
    now = time.time()
    ready, age = [_HELP_READY], [_HELP_AGE]
    rows = Readiness.objects.filter(server__archived_at__isnull=True).values_list(
        "tenant_id", "server__subscription_id", "server__resource_group", "server__name", "state",
        "last_conclusive_at")
    for tenant, subscription, group, name, state, at in rows.iterator(chunk_size=2000):
        labels = (f'{{resource_group="{_escape(group)}",server="{_escape(name)}",'
                  f'subscription="{_escape(subscription)}",tenant="{_escape(tenant)}"}}')
        ready.append(f"ltr_server_ready{labels} {'1.0' if state == 'ready' else '0.0'}\n")
        age.append(f"ltr_server_seconds_since_conclusive_check{labels} {max(0.0, now - at.timestamp())!r}\n")
    return "".join(ready) + "".join(age)


_HELP_READY = ("# HELP ltr_server_ready 1 when the server's last conclusive check passed, 0 when it found the server "
               "not ready; absent while never checked\n# TYPE ltr_server_ready gauge\n")
_HELP_AGE = ("# HELP ltr_server_seconds_since_conclusive_check Seconds since a check last said something about the "
             "server\n# TYPE ltr_server_seconds_since_conclusive_check gauge\n")


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


class FleetCollector:
    """The checks' counters, collected on every scrape from SettledTotals (the per-server gauges are
    readiness_text's)."""

    def collect(self):
        yield from self._checks()

    def _checks(self):
        outcomes = CounterMetricFamily("ltr_checks", "Finished checks by outcome category",
                                       labels=["tenant", "category"])
        durations = SummaryMetricFamily("ltr_check_duration_seconds", "Time from a check's start to its end",
                                        labels=["tenant"])
        attempts = CounterMetricFamily("ltr_arm_attempts", "HTTP attempts made to ARM by checks", labels=["tenant"])
        retries = CounterMetricFamily("ltr_arm_retries", "Attempts beyond the first", labels=["tenant"])
        throttled = CounterMetricFamily("ltr_arm_throttled", "Attempts ARM answered 429", labels=["tenant"])
        per_tenant = defaultdict(Sums)
        for (tenant, category), sums in TOTALS.read().items():
            outcomes.add_metric([tenant, category], sums.n)
            per_tenant[tenant] += sums
        for tenant, sums in per_tenant.items():
            durations.add_metric([tenant], count_value=sums.timed, sum_value=sums.took)
            attempts.add_metric([tenant], sums.tries)
            retries.add_metric([tenant], max(0, sums.tries - sums.n))
            throttled.add_metric([tenant], sums.throttled)
        yield from (outcomes, durations, attempts, retries, throttled)


@dataclass
class Sums:
    """Of some finished checks: how many, their ARM attempts and 429s, how many were timed and for how long."""
    n: int = 0
    tries: int = 0
    throttled: int = 0
    timed: int = 0
    took: float = 0.0

    def __iadd__(self, other: "Sums") -> "Sums":
        for name in ("n", "tries", "throttled", "timed", "took"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


class SettledTotals:
    """The finished checks' sums per (tenant, category), kept by each process and topped up at each scrape.

    Summing every finished check on every scrape read the whole history twice: 1.0 s of a 1.4-1.7 s scrape at
    1,000,000 checks, growing with the history. A check that has ended never changes again (a re-run is a new
    check) and none is deleted, so the sums of the checks below an id where every check has ended ("settled")
    are kept, and a scrape sums only the checks from there on, a range of the primary key.

    Settled: below the oldest active check, and below the newest id the previous scrape saw (an id handed out
    just now may belong to a transaction that has not committed yet). The race accepted: a transaction that
    stays uncommitted across two scrapes while newer ids commit would have its checks missed until the process
    restarts; queuing commits in chunks of a few hundred rows. If the table's ids go back (a restore), the
    sums are read again from scratch.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        self.settled_below, self.seen_newest, self.settled = 1, 0, defaultdict(Sums)

    def read(self) -> dict[tuple[str, str], Sums]:
        with self.lock:
            newest = Check.objects.aggregate(newest=Max("id"))["newest"] or 0
            if newest + 1 < self.settled_below:
                self.forget()
            oldest_active = Check.objects.filter(status__in=Check.ACTIVE_STATUSES).aggregate(m=Min("id"))["m"]
            settle_to = max(self.settled_below, min(self.seen_newest + 1, oldest_active or newest + 1))
            totals = defaultdict(Sums)
            for (tenant, category, settles), sums in _sums(self.settled_below, settle_to).items():
                if settles:
                    self.settled[tenant, category] += sums
                else:
                    totals[tenant, category] += sums
            self.settled_below, self.seen_newest = settle_to, newest
            for key, sums in self.settled.items():
                totals[key] += sums
            return totals


def _sums(from_id: int, settle_to: int) -> dict[tuple[str, str, bool], Sums]:
    """The sums of the finished checks from `from_id` on, by tenant, category and whether id < settle_to: one
    query, a range of the primary key."""
    settles = Case(When(id__lt=settle_to, then=Value(True)), default=Value(False), output_field=BooleanField())
    rows = (Check.objects.filter(id__gte=from_id, finished_at__isnull=False).exclude(category="").order_by()
            .values_list("tenant_id", "category").annotate(
                settles=settles, n=Count("id"), tries=Sum("attempts"), throttled=Sum("throttled_attempts"),
                took=Sum(F("finished_at") - F("started_at")), timed=Count("started_at")))
    return {(tenant, category, settled): Sums(n, tries or 0, throttled or 0, timed, took.total_seconds() if took
                                              else 0.0)
            for tenant, category, settled, n, tries, throttled, took, timed in rows}


TOTALS = SettledTotals()


def _authorized(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected.encode())


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        response = HttpResponse("A bearer token (METRICS_TOKEN) is required.\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())
    return HttpResponse(readiness_text().encode() + generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
