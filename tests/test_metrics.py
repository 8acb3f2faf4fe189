"""/metrics: readiness per server, time since the last conclusive check, outcomes, durations, retries and
429s, in Prometheus's format, only with the bearer token."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from checks.models import Check
from dashboard.demo import CONTOSO, PROD
from tests.conftest import ALICE

TOKEN = {"Authorization": "Bearer demo-metrics-token"}


def samples(response) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
def test_without_the_token_it_answers_401(client, db, headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_an_empty_token_setting_turns_it_off(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_it_reports_readiness_outcomes_retries_and_429s_from_real_checks(client, signed_in, sim, worker, fleet):
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-payments-01", outcome="throttled", fail_times=1,
                      retry_after_ms=20)
    signed_in(ALICE["upn"])
    for name in ("pg-payments-01", "pg-orders", "pg-analytics"):
        client.post(f"/servers/{fleet[name].pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    worker()
    client.logout()
    response = client.get("/metrics", headers=TOKEN)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    got = samples(response)

    def server(name):
        s = fleet[name]
        return (("resource_group", s.resource_group), ("server", name), ("subscription", s.subscription_id),
                ("tenant", CONTOSO))

    assert got[("ltr_server_ready", server("pg-payments-01"))] == 1
    assert got[("ltr_server_ready", server("pg-orders"))] == 0
    assert ("ltr_server_ready", server("pg-analytics")) not in got, "a permission problem says nothing of the server"
    assert 0 <= got[("ltr_server_seconds_since_conclusive_check", server("pg-orders"))] < 60
    tenant = (("tenant", CONTOSO),)
    assert got[("ltr_checks_total", (("category", "passed"), ("tenant", CONTOSO)))] == 1
    assert got[("ltr_checks_total", (("category", "permission_missing"), ("tenant", CONTOSO)))] == 1
    assert got[("ltr_arm_attempts_total", tenant)] == sum(Check.objects.values_list("attempts", flat=True)) == 4
    assert got[("ltr_arm_retries_total", tenant)] == 1
    assert got[("ltr_arm_throttled_total", tenant)] == 1
    assert got[("ltr_check_duration_seconds_count", tenant)] == 3


def test_the_scrape_costs_the_same_queries_for_10_or_100_servers(client, alice, django_assert_num_queries):
    from tests.conftest import make_server
    from tests.factories import make_check

    def scrape_with(n):
        for i in range(n):
            check = make_check(make_server(name=f"pg-m-{n}-{i}"), alice)
            Check.objects.filter(pk=check.pk).update(category="passed")
            from checks.models import Readiness

            Readiness.observe(Check.objects.select_related("server").get(pk=check.pk))
        with django_assert_num_queries(4):  # readiness; the newest id, the oldest active one; the sums
            assert client.get("/metrics", headers=TOKEN).status_code == 200

    scrape_with(10)
    scrape_with(100)


def test_the_outcome_counters_stay_right_while_checks_end_between_scrapes(client, alice):
    """A scrape sums only the checks from the oldest unsettled one on and keeps the rest: a check still running at
    one scrape and ending before the next is counted once it ends, and never twice."""
    from django.utils import timezone

    from tests.conftest import make_server
    from tests.factories import make_check

    def passed():
        got = samples(client.get("/metrics", headers=TOKEN))
        return got.get(("ltr_checks_total", (("category", "passed"), ("tenant", CONTOSO))), 0)

    servers = [make_server(name=f"pg-s-{i}") for i in range(4)]
    for server in servers[:3]:
        make_check(server, alice)
    running = make_check(servers[3], alice, status="running")
    assert passed() == 3
    make_check(servers[0], alice)
    make_check(servers[1], alice)
    assert passed() == 5
    Check.objects.filter(pk=running.pk).update(status="succeeded", category="passed", finished_at=timezone.now())
    assert [passed() for _ in range(3)] == [6, 6, 6]
    # Settled checks are not read again (a finished check never changes; this one is changed only to show it):
    Check.objects.filter(pk=running.pk).update(category="azure_failure")
    assert passed() == 6
    make_check(servers[2], alice)
    assert passed() == 7


def test_a_table_whose_ids_went_back_is_summed_again(client, alice):
    from tests.conftest import make_server
    from tests.factories import make_check

    server = make_server(name="pg-restored")
    checks = [make_check(server, alice) for _ in range(3)]
    for _ in range(2):
        client.get("/metrics", headers=TOKEN)  # the second settles all three
    Check.objects.filter(pk__in=[c.pk for c in checks[1:]]).delete()  # as if restored from an older backup
    got = samples(client.get("/metrics", headers=TOKEN))
    assert got[("ltr_checks_total", (("category", "passed"), ("tenant", CONTOSO)))] == 1


def test_the_per_server_series_parse_back_with_every_label_value_as_it_was(client, alice):
    """readiness_text writes the two per-server gauges by hand: a resource group with a quote, a backslash and a
    line feed must come back from Prometheus's own parser unchanged."""
    from checks.models import Readiness
    from tests.conftest import make_server
    from tests.factories import make_check

    odd = 'rg "quoted" back\\slash\nnew line'
    for group, status in ((odd, "succeeded"), ("rg-plain", "failed")):
        server = make_server(resource_group=group, name=f"pg-{status}")
        Check.objects.filter(pk=make_check(server, alice, status=status, category=(
            "passed" if status == "succeeded" else "server_not_ready")).pk).update()
        Readiness.observe(Check.objects.select_related("server").get(server=server))
    got = samples(client.get("/metrics", headers=TOKEN))
    labels = {(name, dict(key).get("resource_group")): value for (name, key), value in got.items()
              if name.startswith("ltr_server")}
    assert labels[("ltr_server_ready", odd)] == 1 and labels[("ltr_server_ready", "rg-plain")] == 0
    assert 0 <= labels[("ltr_server_seconds_since_conclusive_check", odd)] < 60
