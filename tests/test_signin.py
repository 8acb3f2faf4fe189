"""Signing in with the real MSAL against the simulator's Entra ID, over loopback sockets."""

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import SESSION_KEY

from checks.models import Check
from checks.resume import PENDING_RUN_KEY
from dashboard import tokencache
from dashboard.models import TokenCache, User
from tests.conftest import ALICE, BOB, CHARLIE, complete_sign_in, sign_in


def _authorize(client, upn, next_url="/"):
    """Start a flow and let the simulator sign `upn` in; return the callback query (not yet delivered)."""
    start = client.get("/auth/signin/", {"next": next_url, "login_hint": upn})
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    return {k: v[0] for k, v in parse_qs(urlparse(authorize.headers["Location"]).query).items()}


def test_signed_out_visitors_are_sent_to_sign_in_and_on_to_entra(client, sim, db):
    response = client.get("/checks/?outcome=failed")
    assert response.status_code == 302 and response["Location"] == "/auth/signin/?next=/checks/%3Foutcome%3Dfailed"
    start = client.get(response["Location"])
    assert start.status_code == 302
    authorize = urlparse(start["Location"])
    assert start["Location"].startswith(sim.http_url)
    query = parse_qs(authorize.query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["nonce"]
    assert "https://management.azure.com/user_impersonation" in query["scope"][0]


def test_a_user_signs_in_and_lands_where_they_were_going(client, sim, db):
    response = sign_in(client, ALICE["upn"], next_url="/checks/?outcome=failed")
    assert response.status_code == 302 and response["Location"] == "/checks/?outcome=failed"
    user = User.objects.get()
    assert (user.tenant_id, user.object_id, user.upn, user.display_name) == (
        ALICE["tid"], ALICE["oid"], ALICE["upn"], "Alice Admin")
    assert user.home_account_id == f"{ALICE['oid']}.{ALICE['tid']}"
    assert client.get("/").status_code == 200


def test_the_token_cache_is_stored_encrypted_in_the_database(client, sim, db):
    sign_in(client, ALICE["upn"])
    row = TokenCache.objects.get()
    stored = bytes(row.encrypted)
    plain = tokencache.load(row.user).serialize()
    assert "RefreshToken" in plain
    # Every secret of the cache is absent from what is stored (not merely "eyJ": three random base64
    # characters of the ciphertext spell that about once in a hundred runs).
    secrets = [v["secret"] for kind in ("AccessToken", "RefreshToken", "IdToken")
               for v in json.loads(plain).get(kind, {}).values()]
    assert secrets and not any(secret.encode() in stored for secret in secrets)
    assert b"refresh_token" not in stored.lower() and b"RefreshToken" not in stored
    for cookie in client.cookies.values():
        assert len(cookie.value) < 100, "nothing but the session id and the CSRF token go into cookies"


def test_sign_in_rotates_the_session_key(client, sim, db):
    query = _authorize(client, ALICE["upn"])
    before = client.session.session_key
    client.get("/auth/callback/", query)
    assert client.session.session_key != before
    assert client.session[SESSION_KEY]


def test_tokens_are_reused_silently_after_sign_in(client, sim, fleet, worker):
    sign_in(client, ALICE["upn"])
    before = sim.stats.token_calls(ALICE["upn"])
    for name in ("pg-payments-01", "pg-staging-01", "pg-ledger"):
        client.post(f"/servers/{fleet[name].pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
        worker()
    assert Check.objects.filter(status="succeeded").count() == 3
    assert sim.stats.token_calls(ALICE["upn"]) == before, "no token request after the sign-in's code redemption"


def test_a_replayed_callback_is_refused(client, sim, db):
    query = _authorize(client, ALICE["upn"])
    assert client.get("/auth/callback/", query).status_code == 302
    # Same browser, same session: the used flow is gone, so the replay never reaches Entra ID.
    response = client.get("/auth/callback/", query)
    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()


def test_a_callback_replayed_in_another_browser_creates_no_session(client, sim, db):
    query = _authorize(client, ALICE["upn"])
    assert client.get("/auth/callback/", query).status_code == 302
    client.cookies.clear()
    response = client.get("/auth/callback/", query)
    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_a_forged_state_is_refused(client, sim, db):
    query = _authorize(client, ALICE["upn"])
    response = client.get("/auth/callback/", {**query, "state": "forged"})
    assert response.status_code == 400
    assert SESSION_KEY not in client.session
    assert not User.objects.exists()


def test_a_code_from_another_flow_is_refused(client, sim, db):
    first = _authorize(client, ALICE["upn"])
    second = _authorize(client, BOB["upn"])
    response = client.get("/auth/callback/", {"state": first["state"], "code": second["code"]})
    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_an_error_from_the_identity_provider_is_shown_escaped(client, sim, db):
    query = _authorize(client, ALICE["upn"])
    response = client.get("/auth/callback/", {"state": query["state"], "error": "access_denied",
                                              "error_description": "<script>x</script>"})
    assert response.status_code == 400
    assert "&lt;script&gt;x&lt;/script&gt;" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_two_tabs_can_sign_in_at_once(client, sim, db):
    tab1 = _authorize(client, ALICE["upn"], next_url="/checks/")
    tab2 = _authorize(client, ALICE["upn"], next_url="/servers/add/")
    assert client.get("/auth/callback/", tab2)["Location"] == "/servers/add/"
    assert client.get("/auth/callback/", tab1)["Location"] == "/checks/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)",
                                    "http://testserver.evil/"])
def test_only_same_site_paths_are_accepted_as_the_return_target(client, sim, db, target):
    response = sign_in(client, ALICE["upn"], next_url=target)
    assert response["Location"] == "/"


def test_sign_out_forgets_the_tokens_ends_the_session_and_goes_through_entra(client, sim, db):
    sign_in(client, ALICE["upn"])
    response = client.post("/auth/signout/")
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert response["Location"].startswith(sim.http_url) and location.path.endswith("/logout")
    assert parse_qs(location.query)["post_logout_redirect_uri"] == ["http://testserver/auth/signed-out/"]
    # The stored cache is emptied (no refresh or access token left), its row kept with its version moved on.
    assert TokenCache.objects.exists() and not any(tokencache.holds_tokens(row.user)
                                                   for row in TokenCache.objects.select_related("user"))
    assert SESSION_KEY not in client.session
    # The simulator sends only loopback addresses back; "testserver" gets its "signed out" page.
    assert requests.get(response["Location"], allow_redirects=False, timeout=10).status_code == 200
    assert client.get("/").status_code == 302
    assert "signed out" in client.get("/auth/signed-out/").content.decode()


def test_sign_in_is_unavailable_when_entra_cannot_be_reached(client, db, settings):
    settings.AZURE_AUTHORITY_HOST = "https://127.0.0.1:9"
    response = client.get("/auth/signin/")
    assert response.status_code == 503
    assert "could not be reached" in response.content.decode()


def test_a_stale_callback_is_refused(client, sim, db, monkeypatch):
    query = _authorize(client, ALICE["upn"])
    import time as real_time

    later = real_time.time() + 16 * 60
    monkeypatch.setattr("dashboard.auth_views.time.time", lambda: later)
    response = client.get("/auth/callback/", query)
    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()
    assert SESSION_KEY not in client.session


def _click_run_without_a_stored_sign_in(client, alice, server):
    """alice's session exists but Azure has no token of hers: the click parks the run and sends her to Entra."""
    client.force_login(alice)
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-parked"})
    assert response.status_code == 302 and "login_hint=alice%40contoso.example" in response["Location"]
    assert not Check.objects.exists()
    return response["Location"]


def test_a_run_parked_for_sign_in_is_queued_once_and_a_later_sign_in_queues_nothing(client, sim, alice, server,
                                                                                    worker):
    complete_sign_in(client, _click_run_without_a_stored_sign_in(client, alice, server))
    assert list(Check.objects.values_list("backup_name", "requested_by")) == [("b-parked", alice.pk)]
    worker()  # the check ends, so a second queueing would not be refused as a duplicate
    sign_in(client, ALICE["upn"])
    assert Check.objects.count() == 1


def test_a_run_parked_by_one_person_is_not_run_by_another_who_signs_in(client, sim, alice, server):
    _click_run_without_a_stored_sign_in(client, alice, server)
    sign_in(client, BOB["upn"])
    assert not Check.objects.exists()


def test_a_run_abandoned_at_the_sign_in_page_does_not_run_at_a_much_later_sign_in(client, sim, alice, server):
    _click_run_without_a_stored_sign_in(client, alice, server)
    session = client.session
    session[PENDING_RUN_KEY] = {**session[PENDING_RUN_KEY], "at": time.time() - 16 * 60}
    session.save()
    sign_in(client, ALICE["upn"])
    assert not Check.objects.exists()


@pytest.mark.parametrize("form", [{"scope": "all", "resource_group": "rg-payments-prod"}, {"server": "{pk}"}])
def test_a_batch_asked_for_when_a_sign_in_is_needed_starts_after_it(client, sim, alice, server, staging_server,
                                                                     form):
    from checks.models import Batch
    from dashboard.audit import AuditEvent

    client.force_login(alice)  # a session, but no token of hers: Azure wants her back
    form = {name: value.format(pk=server.pk) for name, value in form.items()}
    response = client.post("/batches/", {**form, "query": "resource_group=rg-payments-prod"})
    assert response.status_code == 302 and "login_hint=alice%40contoso.example" in response["Location"]
    assert not Batch.objects.exists()
    landed = complete_sign_in(client, response["Location"])
    assert landed.status_code == 302 and landed["Location"] == "/?resource_group=rg-payments-prod"
    batch = Batch.objects.get()
    assert (batch.server_ids, batch.started_by) == ([server.pk], alice)
    page = client.get(landed["Location"]).content.decode()
    assert f'Signed in again; the batch of 1 check is starting. <a href="/batches/{batch.pk}/">' in page
    assert AuditEvent.objects.filter(action="batch_run").get().details["after_sign_in"] is True
    sign_in(client, ALICE["upn"])  # a later sign-in starts nothing more
    assert Batch.objects.count() == 1


def test_an_abandoned_batch_does_not_start_at_the_sign_in_of_a_run_asked_for_later(client, sim, alice, server,
                                                                                    staging_server):
    from checks.models import Batch

    client.force_login(alice)
    assert "login_hint" in client.post("/batches/", {"scope": "all"})["Location"]  # then: back, not signed in
    again = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-one"})
    complete_sign_in(client, again["Location"])
    assert not Batch.objects.exists() and list(Check.objects.values_list("backup_name", flat=True)) == ["b-one"]


def test_a_tenant_not_in_allowed_tenant_ids_is_refused_and_nothing_is_kept(client, sim, db, settings):
    from dashboard.audit import AuditEvent

    settings.ALLOWED_TENANT_IDS = {ALICE["tid"]}
    response = sign_in(client, CHARLIE["upn"])
    page = response.content.decode()
    assert response.status_code == 403 and "is not one this dashboard serves" in page and CHARLIE["tid"] in page
    assert not User.objects.exists() and not TokenCache.objects.exists() and SESSION_KEY not in client.session
    assert AuditEvent.objects.get().action == "sign_in_failed"
    assert client.get("/").status_code == 302
    assert sign_in(client, ALICE["upn"]).status_code == 302 and client.get("/").status_code == 200


def test_personal_microsoft_accounts_are_never_a_tenant_here():
    from dashboard.roles import tenant_refusal

    assert "Personal Microsoft accounts" in tenant_refusal("9188040D-6C67-4C5B-B112-36A304B66DAD")
    assert tenant_refusal(ALICE["tid"]) == ""


def test_a_tenant_taken_off_allowed_tenant_ids_loses_its_open_sessions_and_schedules(client, alice, server,
                                                                                     settings):
    from schedules.firing import run_as_owner
    from tests.test_schedules_pages import make_schedule

    client.force_login(alice)
    assert client.get("/").status_code == 200
    schedule = make_schedule(alice)
    settings.ALLOWED_TENANT_IDS = {CHARLIE["tid"]}
    response = client.get("/")
    assert response.status_code == 403 and "is not one this dashboard serves" in response.content.decode()
    assert SESSION_KEY not in client.session and client.get("/").status_code == 302, "signed out"
    assert run_as_owner(schedule, schedule.next_run_at) is None
    schedule.refresh_from_db()
    assert "no longer served by this dashboard" in schedule.last_problem and not Check.objects.exists()


def test_behind_a_tls_proxy_the_redirect_uri_is_https_and_the_request_is_not_sent_round_again(client, sim, db,
                                                                                               settings):
    """The README's deploy: BEHIND_PROXY=1 (Django's SECURE_PROXY_SSL_HEADER), HTTPS redirect on, and no
    AZURE_REDIRECT_URI, so the callback's address comes from the request the proxy passed on."""
    settings.AZURE_REDIRECT_URI = ""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["ltr.example.com"]
    proxied = {"Host": "ltr.example.com", "X-Forwarded-Proto": "https"}
    start = client.get("/auth/signin/", headers=proxied)
    assert start.status_code == 302 and start["Location"].startswith(sim.http_url)
    assert parse_qs(urlparse(start["Location"]).query)["redirect_uri"] == ["https://ltr.example.com/auth/callback/"]
    # What reached the web server without the proxy's word is sent to https, not served.
    direct = client.get("/auth/signin/", headers={"Host": "ltr.example.com"})
    assert direct.status_code == 301 and direct["Location"] == "https://ltr.example.com/auth/signin/"


def test_a_single_tenant_deployment_signs_in_at_its_tenants_authority_only(client, sim, db, settings):
    """AZURE_TENANT_ID: Entra ID is asked at /<tenant>/, not /organizations/, so its users alone get in there."""
    settings.AZURE_TENANT_ID = ALICE["tid"]
    start = client.get("/auth/signin/", {"login_hint": ALICE["upn"]})
    assert urlparse(start["Location"]).path == f"/{ALICE['tid']}/oauth2/v2.0/authorize"
    assert complete_sign_in(client, start["Location"]).status_code == 302
    assert User.objects.get().upn == ALICE["upn"]
    assert all(f"/{ALICE['tid']}/" in r.path for r in sim.received("/oauth2/v2.0/token", "POST"))
    client.logout()
    start = client.get("/auth/signin/", {"login_hint": CHARLIE["upn"]})  # Fabrikam's
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert authorize.status_code == 200, "no code for the callback: the tenant's own account picker"
    assert "There is no account &#x27;charlie@fabrikam.example&#x27; here" in authorize.text
    assert User.objects.count() == 1
