"""The schedules pages: list, create, edit, pause, resume, run now, delete; who may do what."""

from datetime import time, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from checks.models import Batch, Check
from dashboard.demo import PROD
from schedules.models import Schedule
from tests.conftest import ALICE, make_server

ROUTES = ["/schedules/", "/schedules/new/", "/schedules/{pk}/edit/"]
POSTS = ["/schedules/new/", "/schedules/{pk}/edit/", "/schedules/{pk}/pause/", "/schedules/{pk}/resume/",
         "/schedules/{pk}/run/", "/schedules/{pk}/delete/"]


def make_schedule(owner, **fields) -> Schedule:
    defaults = {"tenant_id": owner.tenant_id, "owner": owner, "name": "Nightly", "cadence": "daily",
                "daily_at": time(2, 30), "time_zone": "Europe/Berlin"}
    schedule = Schedule(**{**defaults, **fields})
    schedule.next_run_at = schedule.first_run(timezone.now())
    schedule.save()
    return schedule


def form_data(**overrides) -> dict:
    return {"name": "Payments nightly", "scope": "resource_group", "subscription_id": PROD,
            "resource_group": "rg-payments-prod", "search": "", "cadence": "daily", "every_hours": "",
            "daily_at": "02:30", "time_zone": "Europe/Berlin", **overrides}


@pytest.mark.parametrize("path", ROUTES + POSTS)
@pytest.mark.django_db
def test_every_schedules_page_needs_sign_in(client, path):
    method = client.post if path in POSTS and path not in ROUTES else client.get
    response = method(path.format(pk=1))
    assert response.status_code == 302 and response["Location"].startswith("/auth/signin/?next=")


@pytest.mark.parametrize("path", POSTS)
def test_every_schedules_post_needs_a_csrf_token(alice, server, path):
    schedule = make_schedule(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(path.format(pk=schedule.pk), form_data())
    assert response.status_code == 403
    assert list(Schedule.objects.values_list("name", "state")) == [("Nightly", "active")]
    assert not Batch.objects.exists()


@pytest.mark.parametrize("path", ["/schedules/{pk}/edit/", *POSTS[2:]])
def test_another_tenants_schedule_is_not_found(client, alice, charlie, server, path):
    schedule = make_schedule(alice)
    client.force_login(charlie)
    response = client.post(path.format(pk=schedule.pk), form_data())
    assert response.status_code == 404
    assert Schedule.objects.get().state == "active" and not Batch.objects.exists()
    assert "Nightly" not in client.get("/schedules/").content.decode()


@pytest.mark.parametrize("path", ["/schedules/{pk}/edit/", *POSTS[2:]])
def test_only_the_owner_changes_runs_or_deletes_a_schedule(client, alice, bob, server, path):
    schedule = make_schedule(alice)
    client.force_login(bob)
    response = client.post(path.format(pk=schedule.pk), form_data())
    assert response.status_code == 403
    assert "runs with their Azure sign-in" in response.content.decode()
    assert Schedule.objects.get().state == "active" and not Batch.objects.exists()
    page = client.get("/schedules/").content.decode()
    assert "Nightly" in page and "Only Alice Admin can change it" in page


def test_create_a_schedule_and_see_it_listed(client, alice, server):
    client.force_login(alice)
    response = client.post("/schedules/new/", form_data())
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert (schedule.owner, schedule.tenant_id, schedule.scope) == (alice, alice.tenant_id, "resource_group")
    assert schedule.next_run_at > timezone.now()
    page = client.get("/schedules/").content.decode()
    assert "Payments nightly" in page and "resource group rg-payments-prod" in page and "1 server now" in page
    assert "daily at 02:30 (Europe/Berlin)" in page and "never" in page
    assert schedule.next_run_at.astimezone(schedule.tz).strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"time_zone": "Mars/Base"}, "is not a time zone we know"),
    ({"cadence": "every", "every_hours": "0"}, "every 1 to 168 hours"),
    ({"cadence": "every", "every_hours": "200"}, "every 1 to 168 hours"),
    ({"name": ""}, "Give the schedule a name"),
    ({"subscription_id": "0b5e9999-0000-4000-8000-000000000009"}, "No server of this tenant is registered"),
    ({"resource_group": "rg-staging"}, "No server is registered in that resource group"),
    ({"subscription_id": ""}, "Choose the subscription (a resource group is in a subscription)."),
    ({"scope": "subscription", "subscription_id": ""}, "Choose the subscription (pick one)."),
    ({"daily_at": "25:99"}, "for example 02:30"),
    ({"scope": "search", "search": ""}, "part of a server"),
])
def test_the_form_says_what_is_wrong(client, alice, server, overrides, message):
    make_server(subscription_id="0b5e0002-0000-4000-8000-000000000002", resource_group="rg-staging", name="pg-s")
    client.force_login(alice)
    response = client.post("/schedules/new/", form_data(**overrides))
    assert response.status_code == 400
    assert response.content.decode().count(message) == 1, "said once"
    assert not Schedule.objects.exists()


def test_edit_pause_resume_delete(client, alice, server):
    schedule = make_schedule(alice)
    client.force_login(alice)
    response = client.post(f"/schedules/{schedule.pk}/edit/", form_data(cadence="every", every_hours="6", daily_at=""))
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.cadence_words == "every 6 hours" and schedule.next_run_at <= timezone.now()

    response = client.post(f"/schedules/{schedule.pk}/pause/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "paused" in response.content.decode()
    assert 'id="schedule-' in response.content.decode() and "<html" not in response.content.decode()
    assert Schedule.objects.get().state == "paused"

    client.post(f"/schedules/{schedule.pk}/resume/")
    schedule.refresh_from_db()
    assert schedule.state == "active" and schedule.next_run_at > timezone.now()

    client.post(f"/schedules/{schedule.pk}/delete/")
    assert not Schedule.objects.exists()


def test_run_now_queues_a_batch_as_the_owner_and_keeps_the_cadence(client, signed_in, server):
    alice = signed_in(ALICE["upn"])
    schedule = make_schedule(alice)
    next_run = schedule.next_run_at
    response = client.post(f"/schedules/{schedule.pk}/run/")
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert Check.objects.get().requested_by == alice
    schedule.refresh_from_db()
    assert schedule.next_run_at == next_run and schedule.last_batch == batch
    page = client.get("/schedules/").content.decode()
    assert f'href="/batches/{batch.pk}/"' in page


def test_an_owner_who_must_sign_in_sees_a_sign_in_link_and_others_see_why(client, alice, bob, server):
    client.force_login(alice)
    schedule = make_schedule(alice, state="owner_must_sign_in")  # after signing in: that would re-activate it
    page = client.get("/schedules/").content.decode()
    assert "owner must sign in again" in page and "/auth/signin/?next=/schedules/&amp;login_hint=alice%40contoso" in page
    client.force_login(bob)
    page = client.get("/schedules/").content.decode()
    assert "owner must sign in again" in page and "runs again when Alice Admin signs in" in page
    assert "/auth/signin/?next=/schedules/" not in page
    assert Schedule.objects.get(pk=schedule.pk).state == "owner_must_sign_in", "Bob's sign-in does not wake it"


def test_the_list_shows_the_next_run_in_words(client, alice, server):
    schedule = make_schedule(alice, cadence="every", every_hours=3, daily_at=None)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() + timedelta(hours=3, seconds=30))
    client.force_login(alice)
    page = client.get("/schedules/").content.decode()
    assert "every 3 hours" in page and "in 3 h" in page


def test_run_now_when_azure_needs_the_owner_sends_them_to_sign_in_and_queues_nothing(client, signed_in, sim, server):
    sim.set_token_lifetimes(access=60)  # the access token is renewed at each use
    alice = signed_in(ALICE["upn"])
    schedule = make_schedule(alice)
    sim.revoke_refresh_tokens(ALICE["upn"])
    response = client.post(f"/schedules/{schedule.pk}/run/")
    assert response.status_code == 302 and "/oauth2/v2.0/authorize" in response["Location"]
    assert "login_hint=alice%40contoso.example" in response["Location"]
    assert not Batch.objects.exists()


def test_renaming_a_schedule_leaves_its_next_run_and_last_batch_alone(client, alice, server):
    schedule = make_schedule(alice, scope="all")
    client.force_login(alice)
    batch = Batch.objects.create(tenant_id=alice.tenant_id, started_by=alice, started_by_name="Alice Admin")
    # A worker fired it earlier: its next run moved on a day, its last batch is set.
    Schedule.objects.filter(pk=schedule.pk).update(last_batch=batch, next_run_at=schedule.next_run_at + timedelta(days=1))
    response = client.post(f"/schedules/{schedule.pk}/edit/", form_data(name="Renamed", scope="all"))
    assert response.status_code == 302
    saved = Schedule.objects.get()
    assert saved.name == "Renamed" and saved.last_batch == batch
    assert saved.next_run_at == schedule.next_run_at + timedelta(days=1)
