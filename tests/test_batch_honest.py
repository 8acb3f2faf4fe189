"""A batch page that says exactly what happened: cancel's numbers (message, confirm dialog and header agree),
cancelling while the worker still queues, re-running only what might pass now (and why the rest is left out),
and the segmented progress bar."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from checks import fanout, handoff
from checks.fanout import Cancellation
from checks.models import Batch, Check
from checks.views.batches import bar_segments
from dashboard.demo import STAGING
from dashboard.models import Server
from tests.batching import fan_out_queued
from tests.cast import account
from tests.conftest import ALICE, BOB
from tests.factories import make_check


@pytest.fixture
def alice_in(logged_in):
    return logged_in(ALICE["upn"])


def servers(n: int, group: str = "rg-honest") -> list[Server]:
    return Server.objects.bulk_create([Server(tenant_id=ALICE["tid"], subscription_id=STAGING, resource_group=group,
                                              name=f"pg-{group}-{i:02d}") for i in range(n)])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


# ---- Cancel says what it did ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("queued", "unqueued", "running", "message"), [
    (3, 0, 11, "Cancelled 3 queued checks; 11 were already running and will finish."),
    (1, 0, 1, "Cancelled 1 queued check; 1 was already running and will finish."),
    (3, 0, 0, "Cancelled 3 queued checks."),
    (0, 9000, 0, "Cancelled 9,000 checks not queued yet."),
    (2, 9000, 1, "Cancelled 2 queued checks and 9,000 not queued yet; 1 was already running and will finish."),
    (0, 0, 4, "Nothing to cancel: no check was still queued; 4 are running and will finish."),
    (0, 0, 0, "Nothing to cancel: every check of this batch had already finished."),
])
def test_the_cancel_message_says_exactly_what_happened(queued, unqueued, running, message):
    assert Cancellation(queued=queued, unqueued=unqueued, running=running).message == message


def queued_batch(client, n: int) -> Batch:
    client.post("/batches/", {"scope": "selected", "server": [s.pk for s in servers(n)]})
    fan_out_queued()
    return Batch.objects.get()


def test_dialog_message_and_header_give_the_same_numbers(client, alice_in):
    batch = queued_batch(client, 3)
    Check.objects.filter(pk=batch.checks.order_by("pk")[0].pk).update(status="running", started_at=timezone.now())
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert 'data-confirm="Cancel 2 queued checks? 1 running check will finish."' in page
    response = client.post(f"/batches/{batch.pk}/cancel/", follow=True)
    assert messages_of(response) == ["Cancelled 2 queued checks; 1 was already running and will finish."]
    header = text(response.content.decode())
    assert re.search(r"Cancelled (now|\d+ seconds? ago): 2 queued checks; 1 was already running and was left "
                     r"to finish\.", header), header
    assert "Cancel queued checks" not in header, "nothing is left to cancel"


def test_a_batch_where_nothing_was_left_to_cancel_is_not_called_cancelled(client, alice_in):
    batch = queued_batch(client, 2)
    Check.objects.update(status="succeeded", finished_at=timezone.now())
    response = client.post(f"/batches/{batch.pk}/cancel/", follow=True)
    assert messages_of(response) == ["Nothing to cancel: every check of this batch had already finished."]
    batch.refresh_from_db()
    assert batch.cancelled_at is None
    assert "ancelled" not in text(response.content.decode()).replace("Nothing to cancel", "")


def test_cancelling_while_the_worker_queues_stops_the_queuing(client, alice_in, monkeypatch, worker):
    monkeypatch.setattr(handoff, "QUEUE_CHUNK", 2)
    client.post("/batches/", {"scope": "selected", "server": [s.pk for s in servers(5)]})
    batch = Batch.objects.get()
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert "Queuing 0 of 5\n    servers…" in page and 'data-confirm="Cancel 5 checks not queued yet?"' in page
    Batch.objects.filter(pk=batch.pk).update(fanned_out=1500, server_count=10_000)  # as at fleet scale (README)
    assert "Queuing 1,500 of 10,000\n    servers…" in client.get(f"/batches/{batch.pk}/").content.decode()
    Batch.objects.filter(pk=batch.pk).update(fanned_out=0, server_count=5)
    # The counts beside the dialog say it in its words (a walkthrough found "5 queued" beside "5 ... not queued yet").
    assert ">0 queued</li>" in page and ">5 not queued yet</li>" in page
    assert fanout.queue_next_chunk(batch) == "queuing"  # the worker queued a first chunk of 2
    url = re.search(r'hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    html = client.get(url).content.decode()
    # The page was loaded before any check existed: the poll sends its rows whole, to replace the empty body.
    body = re.search(r'<tbody id="batch-rows" hx-swap-oob="true">(.*?)</tbody>', html, re.S).group(1)
    assert body.count("<tr id=") == 2
    poll = text(html)
    assert "Queuing 2 of 5 servers…" in poll and "0 / 5 done" in poll
    response = client.post(f"/batches/{batch.pk}/cancel/", follow=True)
    assert messages_of(response) == ["Cancelled 2 queued checks and 3 not queued yet."]
    worker()  # the fan-out task finds the batch stopped and queues nothing more
    batch.refresh_from_db()
    assert (batch.fan_out, batch.checks.count(), set(batch.checks.values_list("status", flat=True))) == (
        "stopped", 2, {"cancelled"})
    final = client.get(f"/batches/{batch.pk}/progress/")
    assert final.status_code == 286 and "Queuing" not in final.content.decode()
    assert "Cancelled" in text(client.get(f"/batches/{batch.pk}/").content.decode())


# ---- Re-run only what might pass now ------------------------------------------------------------------------

def failed_batch(alice, bob) -> Batch:
    """Seven checks that did not pass, each for its own reason, and one that passed."""
    group = servers(8)
    batch = Batch.objects.create(tenant_id=ALICE["tid"], started_by=alice, started_by_name="Alice Admin")
    throttled_now = [{"status": 429, "retry_after": 300}]
    for server, user, category, extra in [
        (group[0], alice, "not_found", {}),
        (group[1], alice, "permission_missing", {}),  # refused after Alice's last sign-in
        (group[2], alice, "permission_missing", {"minutes_ago": 60}),  # before it: she has signed in since
        (group[3], bob, "permission_missing", {}),  # Bob's refusal says nothing of Alice's role
        (group[4], alice, "throttled", {"attempt_log": throttled_now}),  # Azure asked to wait 5 minutes
        (group[5], alice, "throttled", {"attempt_log": throttled_now, "minutes_ago": 10}),  # waited long enough
        (group[6], alice, "server_not_ready", {}),
    ]:
        make_check(server, user, status="failed", category=category, batch=batch, **extra)
    make_check(group[7], alice, status="succeeded", batch=batch)
    return batch


def test_rerun_offers_those_that_might_pass_now_and_says_why_the_rest_are_left_out(client, alice_in):
    batch = failed_batch(alice_in, account(BOB))
    page = text(client.get(f"/batches/{batch.pk}/").content.decode())
    assert "Re-run the 4 that might pass now" in page and "Re-run all 7 not passed" in page
    assert "Not found (1): Azure answered 404" in page
    assert "Permission missing (1): Azure refused you the permission, and you have not signed in since" in page
    assert re.search(r"Throttled by Azure \(1\): Azure asked to wait: the last of them may be asked again after "
                     r"\d\d:\d\d:\d\d UTC", page), page
    response = client.post(f"/batches/{batch.pk}/rerun-failed/")
    rerun = Batch.objects.get(rerun_of=batch)
    assert response["Location"] == f"/batches/{rerun.pk}/"
    names = dict(Server.objects.values_list("pk", "name"))
    assert sorted(names[pk] for pk in rerun.server_ids) == [
        "pg-rg-honest-02", "pg-rg-honest-03", "pg-rg-honest-05", "pg-rg-honest-06"]


def test_the_full_set_is_one_click_away(client, alice_in):
    batch = failed_batch(alice_in, account(BOB))
    client.post(f"/batches/{batch.pk}/rerun-failed/", {"which": "all"})
    assert Batch.objects.get(rerun_of=batch).server_count == 7


def test_nothing_that_might_pass_offers_only_the_full_set(client, alice_in):
    group = servers(2)
    batch = Batch.objects.create(tenant_id=ALICE["tid"], started_by=alice_in, started_by_name="Alice Admin")
    for server in group:
        make_check(server, alice_in, status="failed", category="not_found", batch=batch)
    page = text(client.get(f"/batches/{batch.pk}/").content.decode())
    assert "that might pass now" not in page and "Re-run the 0" not in page, "no button of 0, nor words about one"
    assert "None of the checks not passed might pass if run again now:" in page
    assert "Re-run all 2 not passed" in page
    response = client.post(f"/batches/{batch.pk}/rerun-failed/", follow=True)
    assert messages_of(response) == ["None of the checks that did not pass might pass now; nothing was re-run."]
    assert not Batch.objects.filter(rerun_of=batch).exists()


@pytest.mark.parametrize("asked", [10**14, 1e300])
def test_a_retry_after_no_clock_can_hold_does_not_break_the_batch_page(client, alice_in, asked):
    """Retry-After is Azure's (or a proxy's) text: 10^14 seconds is past year 9999. The page that shows the batch
    (and lets it be re-run) must still answer."""
    batch = Batch.objects.create(tenant_id=ALICE["tid"], started_by=alice_in, started_by_name="Alice Admin")
    make_check(servers(1)[0], alice_in, status="failed", category="throttled", batch=batch,
               attempt_log=[{"status": 429, "retry_after": asked}])
    page = client.get(f"/batches/{batch.pk}/")
    assert page.status_code == 200
    assert "Throttled by Azure (1): Azure asked to wait" in text(page.content.decode())


def test_the_rerun_plan_costs_the_same_queries_for_10_or_1000_failures(alice_in, django_assert_max_num_queries):
    for n in (10, 1000):
        batch = Batch.objects.create(tenant_id=ALICE["tid"], started_by=alice_in, started_by_name="Alice Admin")
        Check.objects.bulk_create([Check.new_queued(s, alice_in, "b", batch=batch) for s in servers(n, f"p{n}")])
        batch.checks.update(status="failed", category="throttled", finished_at=timezone.now() - timedelta(hours=1))
        with django_assert_max_num_queries(2):
            assert fanout.rerun_plan(batch, alice_in).might_pass == n


# ---- The segmented bar --------------------------------------------------------------------------------------

def test_nothing_passed_is_a_red_bar_not_a_green_one():
    progress = {"passed": 0, "failed": 7, "cancelled": 0, "running": 0, "queued": 0, "unqueued": 0}
    assert bar_segments(progress) == [{"kind": "failed", "x": 0, "width": 1000, "count": 7}]


def test_the_segments_share_the_width_exactly_and_keep_their_order():
    progress = {"passed": 1, "failed": 1, "cancelled": 0, "running": 1, "queued": 0, "unqueued": 0}
    segments = bar_segments(progress)
    assert [s["kind"] for s in segments] == ["passed", "failed", "running"]
    assert sum(s["width"] for s in segments) == 1000 and segments[-1]["x"] + segments[-1]["width"] == 1000
    assert bar_segments({**progress, "passed": 0, "failed": 0, "running": 0}) == []
    one_in_many = bar_segments({**progress, "passed": 9999, "running": 0})
    assert [(s["kind"], s["width"]) for s in one_in_many] == [("passed", 999), ("failed", 1)]


def test_the_page_draws_the_bar_in_svg_with_its_counts_as_the_text_and_no_style(client, alice_in):
    batch = queued_batch(client, 4)
    first, second, *_ = batch.checks.order_by("pk")
    Check.objects.filter(pk=first.pk).update(status="succeeded", finished_at=timezone.now())
    Check.objects.filter(pk=second.pk).update(status="running", started_at=timezone.now())
    html = client.get(f"/batches/{batch.pk}/progress/").content.decode()
    rects = re.findall(r'<rect class="bar-segment bar-(\w+)" data-count="(\d+)"\s+x="(\d+)" y="0" width="(\d+)"', html)
    assert rects == [("passed", "1", "0", "250"), ("running", "1", "250", "250"), ("queued", "2", "500", "500")]
    counts = re.search(r'<ul class="batch-counts" id="(batch-counts-\d+)">', html).group(1)
    assert f'aria-describedby="{counts}"' in html and 'role="img"' in html
    assert "style=" not in html
    assert "1 passed" in html and "1 running" in html and "2 queued" in html


def test_the_servers_left_out_are_named_from_the_batchs_tenant_only(client, alice_in, fabrikam_server):
    """The names come from ids stored on the batch: read within its tenant, as every query of the dashboard."""
    mine = servers(1)[0]
    batch = Batch.objects.create(tenant_id=ALICE["tid"], started_by=alice_in, started_by_name="Alice Admin",
                                 skipped_ids=[mine.pk, fabrikam_server.pk], skipped_count=2)
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert mine.name in page and fabrikam_server.name not in page


def test_a_chunk_committed_while_the_page_reads_is_counted_once(client, alice_in, monkeypatch):
    client.post("/batches/", {"scope": "selected", "server": [s.pk for s in servers(3)]})
    page_read = Batch.objects.get()  # the page has read the batch: 0 of 3 queued
    monkeypatch.setattr(handoff, "QUEUE_CHUNK", 2)
    fanout.queue_next_chunk(Batch.objects.get())  # the worker commits a chunk of 2 before the page counts
    assert page_read.progress()["total"] == 3
