"""The audit trail: each change a person makes writes exactly one event with who, what, on what and from where;
the rows are never edited or deleted; /audit/ and its CSV export show one tenant's events to its admins."""

import csv
import io
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from alerts.models import Channel
from checks.models import Batch
from dashboard.audit import Action, AppendOnly, AuditEvent, record
from dashboard.demo import CONTOSO, FABRIKAM
from dashboard.models import Server
from schedules.models import Schedule
from tests.conftest import make_server
from tests.factories import make_check
from tests.test_schedules_pages import form_data, make_schedule


def only_event() -> AuditEvent:
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, [(e.action, e.target_name) for e in events]
    return events[0]


def assert_event(action, user, target_type="", target_name=""):
    event = only_event()
    assert (event.action, event.tenant_id, event.actor_id, event.actor_oid, event.actor_name) == (
        action, user.tenant_id, user.pk, user.object_id, str(user))
    assert (event.target_type, event.target_name) == (target_type, target_name)
    assert event.client_ip == "127.0.0.1"
    return event


# ---- each action, exactly one event ---------------------------------------------------------------------

def test_registering_a_server_writes_one_event(client, alice):
    client.force_login(alice)
    client.post("/servers/add/", {"subscription_id": "0b5e0001-0000-4000-8000-000000000001",
                                  "resource_group": "rg-x", "name": "pg-new"})
    event = assert_event(Action.SERVER_REGISTER, alice, "server", "pg-new")
    assert event.target_id == str(Server.objects.get().pk) and event.details["resource_group"] == "rg-x"


def test_importing_writes_one_event_naming_the_servers(client, alice):
    client.force_login(alice)
    prod = "0b5e0001-0000-4000-8000-000000000001"
    client.post("/servers/import/", {"server": [f"{prod}|rg-a|pg-one", f"{prod}|rg-a|pg-two", "bad"]})
    event = assert_event(Action.SERVER_IMPORT, alice)
    assert event.details == {"imported": 2, "already": 0, "invalid": 1, "servers": ["pg-one", "pg-two"]}


def test_archiving_and_restoring_write_one_event_each(client, alice, server):
    client.force_login(alice)
    client.post(f"/servers/{server.pk}/archive/")
    assert_event(Action.SERVER_ARCHIVE, alice, "server", "pg-payments-01")
    client.post(f"/servers/{server.pk}/restore/")
    assert AuditEvent.objects.filter(action=Action.SERVER_RESTORE, target_id=str(server.pk)).count() == 1
    assert AuditEvent.objects.count() == 2


def test_a_run_writes_one_event(client, logged_in, server):
    alice = logged_in()
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b1"})
    event = assert_event(Action.CHECK_RUN, alice, "server", "pg-payments-01")
    assert event.details["backup_name"] == "b1"


def test_a_batch_its_rerun_and_its_cancel_write_one_event_each(client, logged_in, server, staging_server):
    alice = logged_in()
    client.post("/batches/", {"scope": "all"})
    batch = Batch.objects.get()
    event = assert_event(Action.BATCH_RUN, alice, "batch", f"Batch {batch.pk}")
    assert event.target_id == str(batch.pk) and event.details == {"servers": 2, "skipped": 0, "scope": "all"}
    client.post(f"/batches/{batch.pk}/cancel/")
    cancel = AuditEvent.objects.get(action=Action.BATCH_CANCEL)
    # Cancelled before a worker queued its checks: the queuing stopped, two servers not queued.
    assert cancel.target_id == str(batch.pk) and (cancel.details["cancelled"], cancel.details["not_queued"]) == (0, 2)
    assert AuditEvent.objects.count() == 2
    client.post(f"/batches/{batch.pk}/rerun-failed/")  # cancelled checks are not re-run: refused, no event
    assert AuditEvent.objects.count() == 2
    make_check(server, alice, status="failed", batch=batch)
    client.post(f"/batches/{batch.pk}/rerun-failed/")
    rerun = AuditEvent.objects.get(action=Action.BATCH_RERUN)
    assert rerun.details == {"rerun_of": batch.pk, "servers": 1, "which": "might pass now"}


@pytest.mark.parametrize(("path", "action"), [
    ("/schedules/{pk}/edit/", Action.SCHEDULE_EDIT), ("/schedules/{pk}/pause/", Action.SCHEDULE_PAUSE),
    ("/schedules/{pk}/resume/", Action.SCHEDULE_RESUME), ("/schedules/{pk}/delete/", Action.SCHEDULE_DELETE),
    ("/schedules/{pk}/run/", Action.SCHEDULE_RUN),
])
def test_each_schedule_change_writes_one_event(client, logged_in, server, path, action):
    alice = logged_in()
    schedule = make_schedule(alice, name="Nightly")
    if action == Action.SCHEDULE_RESUME:
        Schedule.objects.filter(pk=schedule.pk).update(state=Schedule.State.PAUSED)
    client.post(path.format(pk=schedule.pk), form_data(name="Nightly"))
    event = assert_event(action, alice, "schedule", "Nightly")
    assert event.target_id == str(schedule.pk)


def test_creating_a_schedule_writes_one_event(client, alice, server):
    client.force_login(alice)
    client.post("/schedules/new/", form_data())
    assert_event(Action.SCHEDULE_CREATE, alice, "schedule", "Payments nightly")


def test_channel_changes_write_one_event_each_and_never_the_target(client, alice):
    client.force_login(alice)
    secret_url = "https://1.1.1.1/services/T000/B000/very-secret-token"
    client.post("/alerts/channels/add/", {"name": "Ops", "kind": "slack", "target": secret_url, "enabled": "on"})
    assert_event(Action.CHANNEL_CREATE, alice, "channel", "Ops")
    channel = Channel.objects.get()
    client.post(f"/alerts/channels/{channel.pk}/", {"name": "Ops 2", "kind": "slack", "target": secret_url})
    client.post(f"/alerts/channels/{channel.pk}/test/")
    client.post(f"/alerts/channels/{channel.pk}/delete/")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [Action.CHANNEL_CREATE, Action.CHANNEL_EDIT, Action.CHANNEL_TEST, Action.CHANNEL_DELETE]
    edit = AuditEvent.objects.get(action=Action.CHANNEL_EDIT)
    assert edit.details["changed"] and "very-secret-token" not in str(list(AuditEvent.objects.values()))


def test_sign_in_and_sign_out_write_one_event_each(client, signed_in):
    alice = signed_in("alice@contoso.example")
    event = assert_event(Action.SIGN_IN, alice)
    assert event.details == {"roles": ["Dashboard.Admin"]}
    client.post("/auth/signout/")
    assert AuditEvent.objects.filter(action=Action.SIGN_OUT, actor_id=alice.pk).count() == 1


def test_a_failed_sign_in_writes_one_event_and_a_forged_callback_none(client, sim, db):
    start = client.get("/auth/signin/", {"login_hint": "alice@contoso.example"})
    state = parse_qs(urlparse(start["Location"]).query)["state"][0]
    client.get("/auth/callback/", {"state": state, "error": "access_denied", "error_description": "no"})
    event = only_event()
    assert (event.action, event.tenant_id, event.actor_id, event.details) == (
        Action.SIGN_IN_FAILED, "", None, {"reason": "access_denied"})
    client.get("/auth/callback/", {"state": "forged", "code": "x"})
    assert AuditEvent.objects.count() == 1


def test_a_post_refused_for_csrf_writes_no_event(alice, server):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/servers/{server.pk}/archive/").status_code == 403
    assert not AuditEvent.objects.exists()


def test_a_refused_action_writes_no_event(client, alice, server):
    alice.entra_roles, alice.tenant_uses_app_roles = ["Dashboard.Viewer"], True
    alice.save()
    client.force_login(alice)
    client.post(f"/servers/{server.pk}/archive/")
    assert not AuditEvent.objects.exists()


# ---- the client address, as the rate limiter sees it ------------------------------------------------------

@pytest.mark.parametrize(("behind_proxy", "expected"), [(False, "10.0.0.9"), (True, "203.0.113.7")])
def test_the_client_address_follows_the_proxy_setting(alice, behind_proxy, expected):
    request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    request.user = alice
    with override_settings(BEHIND_PROXY=behind_proxy):
        assert record(request, Action.SETTINGS_CHANGE).client_ip == expected


# ---- append-only ------------------------------------------------------------------------------------------

def test_an_event_cannot_be_edited_or_deleted_by_the_app(alice):
    request = RequestFactory().post("/")
    request.user = alice
    event = record(request, Action.SIGN_IN)
    event.actor_name = "Mallory"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(actor_name="Mallory")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().actor_name == "Alice Admin"


def test_the_admin_shows_events_read_only(rf, admin_user):
    model_admin = site._registry[AuditEvent]
    request = rf.get("/admin/")
    request.user = admin_user
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_a_failed_sign_in_is_listed_in_the_django_admin_which_edits_and_deletes_no_event(client, sim, db,
                                                                                          admin_user):
    start = client.get("/auth/signin/", {"login_hint": "alice@contoso.example"})
    state = parse_qs(urlparse(start["Location"]).query)["state"][0]
    client.get("/auth/callback/", {"state": state, "error": "access_denied", "error_description": "no"})
    event = only_event()
    client.force_login(admin_user)
    listed = client.get("/admin/dashboard/auditevent/").content.decode()
    assert f'href="/admin/dashboard/auditevent/{event.pk}/change/"' in listed and "1 audit event" in listed
    page = client.get(f"/admin/dashboard/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/dashboard/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/dashboard/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert AuditEvent.objects.get().action == Action.SIGN_IN_FAILED


def test_a_scheduled_run_and_its_checks_write_no_event(logged_in, server, worker):
    from schedules.firing import fire_due_schedules

    alice = logged_in("alice@contoso.example")
    schedule = make_schedule(alice, scope="all")
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=schedule.next_run_at.replace(year=2020))
    before = AuditEvent.objects.count()  # (her sign-in)
    assert fire_due_schedules() == 1
    worker()
    assert Batch.objects.count() == 1 and AuditEvent.objects.count() == before


def test_deleting_a_user_leaves_their_events_as_they_were(client, alice):
    client.force_login(alice)
    client.post("/auth/signout/")
    alice.delete()
    event = only_event()
    assert (event.actor_id is not None, event.actor_name) == (True, "Alice Admin")


# ---- the page and the export ------------------------------------------------------------------------------

def events(tenant, n, actor="Alice Admin", action=Action.SERVER_ARCHIVE):
    AuditEvent.objects.bulk_create(AuditEvent(tenant_id=tenant, actor_name=actor, action=action,
                                              target_type="server", target_name=f"pg-{i}") for i in range(n))


def test_the_audit_page_shows_its_tenants_events_newest_first_in_pages(client, alice):
    events(CONTOSO, 60)
    client.force_login(alice)
    page = client.get("/audit/")
    assert page.status_code == 200
    assert page.content.decode().count('id="audit-') == 50 and "60 events" in page.content.decode()
    older = client.get(f"/audit/?cursor={page.context['page'].older}")
    assert older.content.decode().count('id="audit-') == 10


def test_another_tenant_sees_none_of_the_events(client, alice, charlie):
    events(CONTOSO, 3, actor="Secret Sam")
    client.force_login(charlie)  # Fabrikam defines no app roles: charlie is an admin of Fabrikam
    page = client.get("/audit/").content.decode()
    assert "Secret Sam" not in page and "Nothing has been recorded yet" in page
    assert "Secret Sam" not in client.get("/audit/export.csv").getvalue().decode()
    assert "Secret Sam" not in client.get(f"/audit/?who={alice.pk}").content.decode()


def test_the_filters_apply_to_the_page_and_the_export(client, alice, bob):
    client.force_login(alice)
    events(CONTOSO, 2, action=Action.SERVER_ARCHIVE)
    AuditEvent.objects.create(tenant_id=CONTOSO, actor_id=bob.pk, actor_name="Bob Builder", action=Action.CHECK_RUN,
                              target_type="server", target_name="=cmd|' /C calc'!A0")
    assert "calc" not in client.get("/audit/?action=server_archive").content.decode()
    rows = list(csv.reader(io.StringIO(client.get(f"/audit/export.csv?who={bob.pk}").getvalue().decode())))
    assert rows[0][:2] == ["created_at", "actor_name"]
    assert [r[1] for r in rows[1:-1]] == ["Bob Builder"]
    assert rows[1][7] == "'=cmd|' /C calc'!A0"  # a spreadsheet formula is defused
    assert rows[-1] == ["# end of export: 1 rows"]
    assert client.get("/audit/?since=2000-01-01&until=2000-01-02").context["page"].object_list == []


def test_audit_pages_answer_only_get(client, alice):
    client.force_login(alice)
    assert client.post("/audit/").status_code == 405
    assert client.post("/audit/export.csv").status_code == 405


@pytest.mark.parametrize("path", ["/audit/", "/audit/export.csv"])
@pytest.mark.django_db
def test_audit_pages_need_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/auth/signin/")


def test_the_audit_page_costs_the_same_queries_for_10_or_500_events(client, alice):
    client.force_login(alice)
    events(CONTOSO, 10)
    client.get("/audit/")
    with CaptureQueriesContext(connection) as few:
        client.get("/audit/")
    events(CONTOSO, 490)
    with CaptureQueriesContext(connection) as many:
        client.get("/audit/")
    assert len(many) == len(few)


def test_an_event_names_a_fabrikam_tenant_only_for_fabrikam(client, charlie):
    server = make_server(tenant_id=FABRIKAM, name="pg-fab")
    client.force_login(charlie)
    client.post(f"/servers/{server.pk}/archive/")
    assert only_event().tenant_id == FABRIKAM
