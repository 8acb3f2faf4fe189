"""Roles from Entra ID app roles: what the ID token says at sign-in decides what a person may do in their tenant.

In the demo scenario Alice holds Dashboard.Admin, Bob Dashboard.Operator, Vera Dashboard.Viewer and Dan none
(all Contoso); Fabrikam (Charlie) defines no app roles, so everyone there keeps every role.
"""

import pytest
from django.test import override_settings

from checks.models import Batch, Check
from dashboard.models import Server, User
from dashboard.roles import EVERY_ROLE, roles_of
from schedules.models import Schedule
from tests.conftest import make_server
from tests.factories import make_check
from tests.test_schedules_pages import form_data, make_schedule

VERA, DAN = "vera@contoso.example", "dan@contoso.example"


def as_role(user: User, *values: str) -> User:
    """The user as a sign-in with these app role values would leave them (fast: no sign-in dance)."""
    user.entra_roles, user.tenant_uses_app_roles = list(values), True
    user.save(update_fields=["entra_roles", "tenant_uses_app_roles"])
    return user


# ---- sign-in: the roles claim is read each time ----------------------------------------------------------

def test_sign_in_stores_the_app_roles_of_the_id_token_and_refreshes_them_each_time(signed_in, sim):
    alice = signed_in("alice@contoso.example")
    assert alice.entra_roles == ["Dashboard.Admin"] and alice.tenant_uses_app_roles
    assert roles_of(alice) == EVERY_ROLE
    sim.set_app_roles("alice@contoso.example", ["Dashboard.Viewer"])
    alice = signed_in("alice@contoso.example")
    assert alice.entra_roles == ["Dashboard.Viewer"] and roles_of(alice) == {"viewer"}


def test_a_tenant_without_app_roles_keeps_everyone_operator_and_admin_and_says_so(client, signed_in, server):
    charlie = signed_in("charlie@fabrikam.example")
    assert charlie.entra_roles == [] and not charlie.tenant_uses_app_roles
    assert roles_of(charlie) == EVERY_ROLE
    page = client.get("/").content.decode()
    assert "No app roles defined in Entra ID: everyone can do" in page
    assert "Add a server" in page


def test_in_a_tenant_with_app_roles_a_user_without_one_gets_no_page_but_can_sign_out(client, signed_in, server):
    signed_in("alice@contoso.example")  # someone of Contoso signs in with a role: the tenant uses them
    dan = signed_in(DAN)
    assert dan.tenant_uses_app_roles and roles_of(dan) == frozenset()
    for path in ("/", "/checks/", "/schedules/", f"/servers/{server.pk}/", "/checks/export.csv"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "You have no role in this dashboard" in response.content.decode()
    assert client.post("/auth/signout/").status_code == 302


def test_a_colleague_who_signed_in_before_the_tenant_used_roles_loses_everything_at_once(client, signed_in, sim):
    sim.set_app_roles("alice@contoso.example", [])
    dan = signed_in(DAN)  # first of Contoso, nobody with a role yet: every role
    assert roles_of(dan) == EVERY_ROLE
    sim.set_app_roles("alice@contoso.example", ["Dashboard.Admin"])
    signed_in("alice@contoso.example")
    client.force_login(User.objects.get(pk=dan.pk))
    assert client.get("/").status_code == 403


@override_settings(APP_ROLES_REQUIRED=True)
def test_app_roles_required_gives_nothing_to_a_user_without_one_even_in_a_tenant_without_roles(client, signed_in):
    signed_in("charlie@fabrikam.example")
    assert client.get("/").status_code == 403


def test_unknown_role_values_grant_nothing(alice):
    assert roles_of(as_role(alice, "Dashboard.Superuser", "Task.Write")) == frozenset()
    assert roles_of(as_role(alice, "dashboard.OPERATOR")) == {"viewer", "operator"}


# ---- viewer: browse and export, nothing else --------------------------------------------------------------

def test_a_viewer_browses_and_exports_but_sees_no_run_button_and_is_refused_a_run(client, logged_in, server):
    as_role(logged_in("alice@contoso.example"), "Dashboard.Viewer")
    page = client.get("/").content.decode()
    assert "pg-payments-01" in page
    assert "Run pre-backup check" not in page and "Run check on selected" not in page
    assert "Import from Azure" not in page and "Add a server" not in page
    assert client.get("/checks/export.csv").status_code == 200
    assert client.get(f"/servers/{server.pk}/").status_code == 200
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b1"})
    assert response.status_code == 403
    assert "This needs the Operator role" in response.content.decode()
    assert not Check.objects.exists()


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/servers/{pk}/run/"), ("post", "/batches/"), ("post", "/checks/1/reauth/"),
    ("get", "/schedules/new/"), ("post", "/schedules/new/"), ("post", "/batches/1/cancel/"),
    ("post", "/batches/1/rerun-failed/"),
])
def test_a_viewer_is_refused_every_operator_action(client, alice, server, method, path):
    client.force_login(as_role(alice, "Dashboard.Viewer"))
    response = getattr(client, method)(path.format(pk=server.pk), {"backup_name": "b1", "scope": "all"})
    assert response.status_code == 403
    assert "Operator role" in response.content.decode()
    assert not Check.objects.exists() and not Batch.objects.exists() and not Schedule.objects.exists()


BUTTONS = {"/alerts/": ["Add a channel", "Send a test message", 'href="/alerts/channels/{channel}/"'],
           "/schedules/": ["New schedule", "Run now"], "/batches/{batch}/": ["Re-run"]}


@pytest.mark.parametrize(("role", "shown"), [("Dashboard.Viewer", False), ("Dashboard.Admin", True)])
def test_buttons_a_user_may_not_use_are_not_shown(client, alice, server, role, shown):
    """A viewer's own schedule (from when they were an operator), a channel, a batch with a failed check: the
    viewer sees them without a button; an admin sees every button (so the words looked for are the right ones)."""
    from alerts.models import Channel

    channel = Channel.objects.create(tenant_id=alice.tenant_id, name="ops", kind="webhook",
                                     target_hint="hooks.example.com")
    make_schedule(alice, scope="all")
    batch = Batch.objects.create(tenant_id=server.tenant_id, started_by=alice, started_by_name="Alice Admin")
    make_check(server, alice, status="failed", batch=batch)
    client.force_login(as_role(alice, role))
    for url, words in BUTTONS.items():
        page = client.get(url.format(batch=batch.pk)).content.decode()
        words = [word.format(channel=channel.pk) for word in words]
        assert [word in page for word in words] == [shown] * len(words), (url, role)


# ---- operator: runs and own schedules; not the admin's work -----------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("get", "/servers/add/"), ("post", "/servers/add/"), ("get", "/servers/import/"), ("post", "/servers/import/"),
    ("post", "/servers/import/refresh/"), ("post", "/servers/import/archive/"),
    ("post", "/servers/{pk}/archive/"), ("post", "/servers/{pk}/restore/"), ("get", "/alerts/channels/add/"),
    ("post", "/alerts/channels/add/"), ("post", "/alerts/channels/1/delete/"), ("get", "/alerts/channels/1/"),
    ("post", "/alerts/channels/1/"), ("post", "/alerts/channels/1/test/"), ("get", "/audit/"),
    ("get", "/audit/export.csv"),
])
def test_an_operator_is_refused_every_admin_action(client, alice, server, method, path):
    client.force_login(as_role(alice, "Dashboard.Operator"))
    response = getattr(client, method)(path.format(pk=server.pk), {"subscription_id": server.subscription_id,
                                                                     "resource_group": "rg", "name": "pg-new"})
    assert response.status_code == 403
    assert "This needs the Admin role" in response.content.decode()
    server.refresh_from_db()
    assert server.archived_at is None and Server.objects.count() == 1


def test_an_operator_runs_a_check_and_keeps_their_own_schedule(client, logged_in, server):
    as_role(logged_in("bob@contoso.example"), "Dashboard.Operator")
    page = client.get("/").content.decode()
    assert "Run pre-backup check" in page and "Add a server" not in page
    assert client.post(f"/servers/{server.pk}/run/", {"backup_name": "b1"}).status_code == 302
    assert Check.objects.count() == 1
    assert client.post("/schedules/new/", form_data()).status_code == 302
    assert Schedule.objects.get().owner.upn == "bob@contoso.example"


def test_an_operator_cancels_only_their_own_batch_and_an_admin_anyones(client, alice, bob, server):
    batch = Batch.objects.create(tenant_id=server.tenant_id, started_by=alice, started_by_name="Alice Admin")
    make_check(server, alice, status="queued", batch=batch)  # something to cancel
    client.force_login(as_role(bob, "Dashboard.Operator"))
    assert "Cancel queued checks" not in client.get(f"/batches/{batch.pk}/").content.decode()
    response = client.post(f"/batches/{batch.pk}/cancel/")
    assert response.status_code == 403
    assert "Only Alice Admin, who started this batch, or an admin" in response.content.decode()
    batch.refresh_from_db()
    assert batch.cancelled_at is None
    own = Batch.objects.create(tenant_id=server.tenant_id, started_by=bob, started_by_name="Bob Builder")
    assert client.post(f"/batches/{own.pk}/cancel/").status_code == 302
    client.force_login(as_role(alice, "Dashboard.Admin"))
    assert client.post(f"/batches/{batch.pk}/cancel/").status_code == 302
    batch.refresh_from_db()
    assert batch.cancelled_at is not None


def test_a_schedule_whose_owner_lost_the_operator_role_queues_nothing(logged_in, server):
    from schedules.firing import run_as_owner

    schedule = make_schedule(as_role(logged_in(), "Dashboard.Viewer"))
    assert run_as_owner(schedule, schedule.next_run_at) is None
    schedule.refresh_from_db()
    assert "no longer has the Operator role" in schedule.last_problem
    assert not Batch.objects.exists()


def test_an_admin_sees_the_audit_link_and_others_do_not(client, alice):
    client.force_login(as_role(alice, "Dashboard.Admin"))
    assert 'href="/audit/"' in client.get("/").content.decode()
    client.force_login(as_role(alice, "Dashboard.Operator"))
    assert 'href="/audit/"' not in client.get("/").content.decode()


def test_the_demo_tenant_shows_each_role(client, signed_in):
    """The demo scenario gives Contoso one person per role (README, "Roles")."""
    make_server()
    expected = {"alice@contoso.example": EVERY_ROLE, "bob@contoso.example": {"viewer", "operator"},
                VERA: {"viewer"}, DAN: frozenset()}
    for upn, roles in expected.items():
        assert roles_of(signed_in(upn)) == roles, upn


def test_a_viewer_sees_the_channels_but_not_where_they_send(client, alice):
    from alerts.models import Channel

    channel = Channel(tenant_id=alice.tenant_id, name="DBA team", kind="email")
    channel.set_target("dba@contoso.example, oncall@contoso.example", "dba@contoso.example, oncall@contoso.example")
    channel.save()
    client.force_login(as_role(alice, "Dashboard.Viewer"))
    page = client.get("/alerts/").content.decode()
    assert "DBA team" in page and "shown to admins" in page and "dba@contoso.example" not in page
    client.force_login(as_role(alice, "Dashboard.Admin"))
    assert "oncall@contoso.example" in client.get("/alerts/").content.decode()

