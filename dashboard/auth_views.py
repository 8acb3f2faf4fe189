"""Sign-in, its callback, and sign-out (Microsoft Entra ID through dashboard.entra)."""

import logging
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard import audit, entra, roles, subscriptions, tokencache
from dashboard.audit import Action
from dashboard.models import User

log = logging.getLogger(__name__)

FLOWS_KEY = "entra_flows"
# Enough for a handful of tabs signing in at once; older pending flows are dropped.
MAX_PENDING_FLOWS = 5
# A sign-in left at the identity provider's page longer than this is stale and must start again.
FLOW_MAX_AGE_SECONDS = 15 * 60


def _redirect_uri(request: HttpRequest) -> str:
    return settings.AZURE_REDIRECT_URI or request.build_absolute_uri(reverse("signin_callback"))


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ) and candidate.startswith("/") and not candidate.startswith("//"):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _failure(request: HttpRequest, title: str, message: str, status: int = 400) -> HttpResponse:
    return render(request, "auth/failed.html", {"title": title, "message": message}, status=status)


class SignInUnavailable(Exception):
    pass


def begin_sign_in(
    request: HttpRequest,
    *,
    next_url: str | None,
    login_hint: str | None = None,
    claims_challenge: str | None = None,
) -> str:
    """Start a flow, remember it in the session under its state, and return where to send the browser.

    What to do once the user is back (re-run a check, say) is for the caller to keep in the session:
    login() keeps a returning user's session data (and signals `user_logged_in`).
    """
    try:
        flow = entra.start_sign_in(_redirect_uri(request), login_hint=login_hint, claims_challenge=claims_challenge)
    except Exception as exc:
        log.exception("Could not start sign-in with the identity provider")
        raise SignInUnavailable from exc
    flow["next"] = _safe_next(request, next_url)
    flow["started"] = time.time()
    flows = request.session.get(FLOWS_KEY, {})
    flows[flow["state"]] = flow
    request.session[FLOWS_KEY] = dict(list(flows.items())[-MAX_PENDING_FLOWS:])
    return flow["auth_uri"]


def sign_in_unavailable(request: HttpRequest) -> HttpResponse:
    return _failure(
        request,
        "Sign-in is unavailable",
        "The identity provider could not be reached. Try again in a minute.",
        status=503,
    )


def sign_in_again(request: HttpRequest, *, next_url: str, claims_challenge: str | None = None) -> HttpResponse:
    """Send a signed-in user whose Azure token cannot be renewed silently back to Entra ID, as themselves.

    htmx would follow a 302 inside the XHR, so an htmx request gets a client redirect of the whole page.
    """
    try:
        auth_uri = begin_sign_in(request, next_url=next_url, login_hint=request.user.upn or None,
                                 claims_challenge=claims_challenge)
    except SignInUnavailable:
        return sign_in_unavailable(request)
    return HttpResponseClientRedirect(auth_uri) if getattr(request, "htmx", False) else redirect(auth_uri)


@login_not_required
@require_GET
def signin(request: HttpRequest) -> HttpResponse:
    """Start a sign-in and send the browser to Entra ID."""
    try:
        auth_uri = begin_sign_in(request, next_url=request.GET.get("next"), login_hint=request.GET.get("login_hint"))
    except SignInUnavailable:
        return sign_in_unavailable(request)
    return redirect(auth_uri)


@login_not_required
@require_GET
def signin_callback(request: HttpRequest) -> HttpResponse:
    flows = request.session.get(FLOWS_KEY, {})
    flow = flows.pop(request.GET.get("state", ""), None)
    request.session[FLOWS_KEY] = flows
    if flow is None or time.time() - flow.pop("started", 0) > FLOW_MAX_AGE_SECONDS:
        return _failure(
            request,
            "This sign-in link is no longer valid",
            "It was already used, has expired, or was started in another browser. Sign in again.",
        )
    # Only a callback of a flow this browser started (so rate-limited at /auth/signin/) is audited: anyone can
    # send forged callbacks, and each would otherwise be a row.
    if "error" in request.GET:
        audit.record(request, Action.SIGN_IN_FAILED, reason=request.GET["error"][:100])
        return _failure(
            request,
            "Sign-in did not complete",
            f"The identity provider said: {request.GET.get('error_description') or request.GET['error']}",
        )
    next_url = flow.pop("next", reverse(settings.LOGIN_REDIRECT_URL))
    try:
        result = entra.finish_sign_in(flow, request.GET.dict())
    except entra.SignInFailed as exc:
        log.warning("Sign-in failed: %s", exc.error)
        audit.record(request, Action.SIGN_IN_FAILED, reason=exc.error[:100])
        return _failure(request, "Sign-in did not complete", exc.description or exc.error)
    claims = result.claims
    tenant_id, object_id = claims.get("tid", ""), claims.get("oid", "")
    if not (tenant_id and object_id):
        audit.record(request, Action.SIGN_IN_FAILED, reason="no identity in the ID token")
        return _failure(request, "Sign-in did not complete", "The identity provider did not say who you are.")
    if refusal := roles.tenant_refusal(tenant_id):
        log.warning("Sign-in refused: tenant %s is not served here", tenant_id)
        audit.record(request, Action.SIGN_IN_FAILED, reason=f"tenant {tenant_id} not served")
        return _failure(request, "This organization cannot use this dashboard", refusal, status=403)
    user = _user_from_claims(claims, result.home_account_id)
    tokencache.save(user, result.cache, force=True)
    # login() rotates the session key and the CSRF token.
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    log.info("User %s signed in (tenant %s)", user.pk, tenant_id)
    audit.record(request, Action.SIGN_IN, user=user, roles=user.entra_roles)
    subscriptions.read_after_sign_in(user)
    return redirect(next_url)


def _user_from_claims(claims: dict, home_account_id: str) -> User:
    """The user the ID token names, with their app roles as of now (dashboard.roles)."""
    tenant_id, object_id = claims["tid"], claims["oid"]
    entra_roles = roles.from_claims(claims)
    if entra_roles:  # the tenant uses app roles from now on: a colleague without one has none
        User.objects.filter(tenant_id=tenant_id, tenant_uses_app_roles=False).update(tenant_uses_app_roles=True)
    uses_roles = bool(entra_roles) or User.objects.filter(tenant_id=tenant_id, tenant_uses_app_roles=True).exists()
    user, _ = User.objects.update_or_create(
        tenant_id=tenant_id,
        object_id=object_id,
        defaults={
            "username": f"{tenant_id}.{object_id}",
            "display_name": claims.get("name", "")[:200],
            "upn": claims.get("preferred_username", "")[:254],
            "home_account_id": home_account_id,
            "entra_roles": entra_roles,
            "tenant_uses_app_roles": uses_roles,
        },
    )
    return user


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    audit.record(request, Action.SIGN_OUT)
    entra.sign_out(request.user)
    logout(request)
    end_session = entra.end_session_endpoint()
    back = request.build_absolute_uri(reverse("signed_out"))
    if end_session:
        return redirect(f"{end_session}?{urlencode({'post_logout_redirect_uri': back})}")
    return redirect("signed_out")


@login_not_required
@require_GET
def signed_out(request: HttpRequest) -> HttpResponse:
    return render(request, "auth/signed_out.html")


@login_not_required
@require_GET
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own password form is useless here (people sign in with Entra ID): signed-out visitors
    go to Entra sign-in, staff go on, everyone else is told plainly that the admin is for the deployment's staff."""
    next_url = _safe_next(request, request.GET.get("next") or "/admin/")
    if not request.user.is_authenticated:
        return redirect_to_login(next_url)
    if request.user.is_staff:
        return redirect(next_url)
    return render(request, "403.html", {
        "message": ("Django's admin pages are for the people who run this deployment (staff accounts), whatever "
                    "your role in the dashboard. Everything you may do is on the dashboard's own pages."),
    }, status=403)
