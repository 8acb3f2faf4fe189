"""Every page needs a signed-in user; every POST needs a CSRF token; /healthz needs neither."""

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from checks.models import Check
from dashboard.models import Server
from tests.conftest import ALICE, sign_in

# /metrics needs no session but a bearer token (tests/test_metrics.py).
PUBLIC = {"signin", "signin_callback", "signed_out", "healthz", "metrics"}


def _named_routes(patterns=None, prefix=""):
    """Every named route, through the apps' URL modules the root includes (not into the admin's)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if getattr(pattern.urlconf_module, "__name__", "").startswith(("checks.", "dashboard.")):
                yield from _named_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif getattr(pattern, "name", None) and pattern.name not in PUBLIC:
            yield pattern.name, (prefix + str(pattern.pattern)).replace("<int:pk>", "1")


ROUTES = sorted(_named_routes())


def test_the_route_list_covers_the_pages():
    names = {name for name, _ in ROUTES}
    assert {"server_list", "server_add", "server_detail", "server_row", "run_check", "history", "history_export",
            "check_detail", "check_row", "signout"} <= names


@pytest.mark.parametrize(("name", "path"), ROUTES)
@pytest.mark.django_db
def test_every_page_redirects_to_sign_in_when_signed_out(client, name, path):
    response = client.get(f"/{path}")
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/signin/?next=")


@pytest.mark.django_db
def test_a_signed_out_htmx_request_gets_a_client_redirect_to_sign_in(client):
    response = client.get("/servers/1/row/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/checks/?outcome=failed"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/auth/signin/?next=%2Fchecks%2F%3Foutcome%3Dfailed"


@pytest.mark.parametrize("path", ["/servers/add/", "/servers/import/", "/servers/{pk}/run/", "/servers/{pk}/archive/",
                                  "/batches/", "/batches/1/cancel/", "/batches/1/rerun-failed/", "/checks/1/reauth/",
                                  "/auth/signout/", "/servers/{pk}/backups/refresh/", "/servers/import/refresh/",
                                  "/servers/import/archive/"])
def test_every_post_is_refused_without_a_csrf_token(alice, server, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(path.format(pk=server.pk), {"backup_name": "b1", "subscription_id": "x"})
    assert response.status_code == 403
    assert not Check.objects.exists()
    server.refresh_from_db()
    assert server.archived_at is None
    assert Server.objects.count() == 1


def test_an_htmx_post_with_the_csrf_header_is_accepted(sim, server):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, ALICE["upn"])
    page = client.get("/")
    token = page.context["csrf_token"]
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b1"},
                           headers={"HX-Request": "true", "X-CSRFToken": str(token)})
    assert response.status_code == 200
    assert Check.objects.count() == 1


@pytest.mark.django_db
def test_healthz_answers_without_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path", ["/servers/{pk}/", "/servers/{pk}/row/", "/checks/{check}/", "/checks/{check}/row/"]
)
def test_another_tenants_server_or_check_is_not_found(client, charlie, server, path):
    check = Check.objects.create(server=server, backup_name="b", requested_by_oid="x", requested_by_name="x",
                                 requested_by_tenant=server.tenant_id, api_version="2024-08-01")
    client.force_login(charlie)
    assert client.get(path.format(pk=server.pk, check=check.pk)).status_code == 404


def test_another_tenants_server_cannot_be_checked_or_archived(client, charlie, server):
    client.force_login(charlie)
    assert client.post(f"/servers/{server.pk}/run/", {"backup_name": "b1"}).status_code == 404
    assert client.post(f"/servers/{server.pk}/archive/").status_code == 404
    assert not Check.objects.exists()


@pytest.mark.parametrize("path", ["/checks/{big}/", "/checks/{big}/row/", "/servers/{big}/", "/servers/{big}/row/",
                                  "/batches/{big}/", "/batches/{big}/progress/"])
def test_ids_beyond_any_integer_column_are_not_found_not_an_error(client, alice, path):
    client.force_login(alice)
    assert client.get(path.format(big="9" * 25)).status_code == 404
