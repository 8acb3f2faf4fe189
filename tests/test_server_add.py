"""Registering a server: each input rule shows its message and saves nothing."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.demo import PROD
from dashboard.models import Server
from tests.conftest import make_server

VALID = {"subscription_id": PROD, "resource_group": "rg-payments-prod", "name": "pg-new-01", "label": "New one"}


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def test_it_shows_the_form(client_alice):
    response = client_alice.get("/servers/add/")
    assert response.status_code == 200
    assert b"Subscription id" in response.content


def test_it_registers_a_server_in_the_users_tenant(client_alice, alice):
    response = client_alice.post("/servers/add/", VALID)
    assert response.status_code == 302
    server = Server.objects.get()
    assert (server.tenant_id, server.name, server.label, server.added_by) == (alice.tenant_id, "pg-new-01", "New one", alice)


def test_it_lowercases_the_subscription_id(client_alice):
    client_alice.post("/servers/add/", {**VALID, "subscription_id": PROD.upper()})
    assert Server.objects.get().subscription_id == PROD


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subscription_id", "prod-subscription", "Enter the subscription id as a UUID"),
        ("subscription_id", "", "This field is required."),
        ("resource_group", "rg.", "cannot end with a period"),
        ("resource_group", "rg/../other", "1 to 90 letters"),
        ("resource_group", "x" * 91, "at most 90 characters"),
        ("name", "pg", "3 to 63 letters"),
        ("name", "-pg-1", "cannot start or end with a hyphen"),
        ("name", "pg--1", "single hyphens"),
        ("name", "pg_1", "3 to 63 letters"),
        ("label", "x" * 101, "at most 100 characters"),
    ],
)
def test_it_refuses_invalid_input_with_a_message_and_saves_nothing(client_alice, field, value, message):
    response = client_alice.post("/servers/add/", {**VALID, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Server.objects.exists()


def test_it_refuses_the_same_server_twice_whatever_the_case(client_alice):
    client_alice.post("/servers/add/", VALID)
    response = client_alice.post(
        "/servers/add/", {**VALID, "resource_group": "RG-PAYMENTS-PROD", "name": "PG-NEW-01"}
    )
    assert response.status_code == 400
    assert "already registered" in response.content.decode()
    assert Server.objects.count() == 1


def test_another_tenant_may_register_the_same_server(client, alice, charlie):
    client.force_login(alice)
    client.post("/servers/add/", VALID)
    client.force_login(charlie)
    response = client.post("/servers/add/", VALID)
    assert response.status_code == 302
    assert Server.objects.count() == 2


def test_registering_an_archived_server_again_restores_it_with_its_history(client_alice):
    client_alice.post("/servers/add/", VALID)
    server = Server.objects.get()
    client_alice.post(f"/servers/{server.pk}/archive/")
    assert Server.objects.active().count() == 0
    response = client_alice.post("/servers/add/", {**VALID, "name": "PG-NEW-01", "label": ""})
    assert response.status_code == 302
    restored = Server.objects.get()
    assert (restored.pk, restored.archived_at, restored.label) == (server.pk, None, "New one")


def test_an_archived_server_can_be_restored_from_its_page(client_alice):
    client_alice.post("/servers/add/", VALID)
    server = Server.objects.get()
    client_alice.post(f"/servers/{server.pk}/archive/")
    page = client_alice.get(f"/servers/{server.pk}/").content.decode()
    assert f'action="/servers/{server.pk}/restore/"' in page
    client_alice.post(f"/servers/{server.pk}/restore/")
    assert Server.objects.get().archived_at is None


def test_archiving_asks_first(client_alice):
    client_alice.post("/servers/add/", VALID)
    page = client_alice.get(f"/servers/{Server.objects.get().pk}/").content.decode()
    assert 'data-confirm="Archive pg-new-01?' in page


def test_a_pasted_subscription_id_with_spaces_is_trimmed_not_cut(client_alice):
    response = client_alice.post("/servers/add/", {**VALID, "subscription_id": f"  {PROD.upper()}  "})
    assert response.status_code == 302
    assert Server.objects.get().subscription_id == PROD
    form = client_alice.get("/servers/add/").content.decode()
    assert 'maxlength="36"' not in form


def test_the_form_escapes_what_was_typed(client_alice):
    response = client_alice.post("/servers/add/", {**VALID, "name": '"><img src=x onerror=alert(1)>'})
    assert b"<img src=x" not in response.content
    assert b"&lt;img src=x" in response.content


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subscription_id=st.text(max_size=50), resource_group=st.text(max_size=100), name=st.text(max_size=70),
       label=st.text(max_size=120))
def test_arbitrary_text_never_breaks_the_form_and_invalid_input_saves_nothing(
    client_alice, subscription_id, resource_group, name, label
):
    before = Server.objects.count()
    data = {"subscription_id": subscription_id, "resource_group": resource_group, "name": name, "label": label}
    response = client_alice.post("/servers/add/", data)
    assert response.status_code in (302, 400)
    assert Server.objects.count() == before + (1 if response.status_code == 302 else 0)
    Server.objects.all().delete()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(backup_name=st.text(max_size=200))
def test_arbitrary_backup_names_never_break_the_run_view(client_alice, sim, server, backup_name):
    response = client_alice.post(f"/servers/{server.pk}/run/", {"backup_name": backup_name},
                                 headers={"HX-Request": "true"})
    # Valid names go to sign-in (this client has no Azure tokens); invalid ones get the form back.
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert "field-error" in response.content.decode()


def test_a_registration_racing_another_is_refused_not_an_error(db):
    first = make_server(name="pg-race")
    # What the second of two simultaneous "Add server" posts does after both passed the form's check.
    twin = Server(tenant_id=first.tenant_id, subscription_id=first.subscription_id,
                  resource_group="RG-PAYMENTS-PROD", name="PG-RACE")
    assert twin.register() is False
    assert Server.objects.count() == 1
