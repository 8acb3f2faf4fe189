"""`/metrics` for the tools operators already run: the fleet's readiness and the checks' outcomes in
Prometheus's text format, read from the database at scrape time (every web process answers the same).

Protected by a bearer token (METRICS_TOKEN): anyone who can scrape it sees every tenant's server names, so a
request without the token gets 401 in every mode, and with METRICS_TOKEN empty the endpoint answers 401 to all.
"""

import hmac
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, F, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from checks.models import Check, Readiness

SERVER_LABELS = ["tenant", "subscription", "resource_group", "server"]


class FleetCollector:
    """Collects on every scrape; holds no state of its own."""

    def collect(self):
        yield from self._readiness()
        yield from self._checks()

    def _readiness(self):
        ready = GaugeMetricFamily("ltr_server_ready", "1 when the server's last conclusive check passed, 0 when it "
                                  "found the server not ready; absent while never checked", labels=SERVER_LABELS)
        age = GaugeMetricFamily("ltr_server_seconds_since_conclusive_check",
                                "Seconds since a check last said something about the server", labels=SERVER_LABELS)
        now = time.time()
        rows = Readiness.objects.filter(server__archived_at__isnull=True).values_list(
            "tenant_id", "server__subscription_id", "server__resource_group", "server__name", "state",
            "last_conclusive_at")
        for tenant, subscription, group, name, state, at in rows.iterator(chunk_size=2000):
            labels = [tenant, subscription, group, name]
            ready.add_metric(labels, 1.0 if state == "ready" else 0.0)
            age.add_metric(labels, max(0.0, now - at.timestamp()))
        yield ready
        yield age

    def _checks(self):
        outcomes = CounterMetricFamily("ltr_checks", "Finished checks by outcome category",
                                       labels=["tenant", "category"])
        durations = SummaryMetricFamily("ltr_check_duration_seconds", "Time from a check's start to its end",
                                        labels=["tenant"])
        attempts = CounterMetricFamily("ltr_arm_attempts", "HTTP attempts made to ARM by checks", labels=["tenant"])
        retries = CounterMetricFamily("ltr_arm_retries", "Attempts beyond the first", labels=["tenant"])
        throttled = CounterMetricFamily("ltr_arm_throttled", "Attempts ARM answered 429", labels=["tenant"])
        finished = Check.objects.filter(finished_at__isnull=False).exclude(category="")
        for tenant, category, n in finished.values_list("server__tenant_id", "category").annotate(n=Count("id")):
            outcomes.add_metric([tenant, category], n)
        per_tenant = finished.values("server__tenant_id").annotate(
            n=Count("id"), tries=Sum("attempts"), throttled=Sum("throttled_attempts"),
            took=Sum(F("finished_at") - F("started_at")), timed=Count("started_at"))
        for row in per_tenant:
            tenant = row["server__tenant_id"]
            took = row["took"].total_seconds() if row["took"] else 0.0
            durations.add_metric([tenant], count_value=row["timed"], sum_value=took)
            attempts.add_metric([tenant], row["tries"] or 0)
            retries.add_metric([tenant], max(0, (row["tries"] or 0) - row["n"]))
            throttled.add_metric([tenant], row["throttled"] or 0)
        yield from (outcomes, durations, attempts, retries, throttled)


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
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
