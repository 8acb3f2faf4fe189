"""Fake Microsoft Entra ID, the browser-facing half (served over plain http): the authorize endpoint with
its demo-user picker, and logout. An authorize request is checked (tenant, app, redirect URI, then its
parameters); errors before the redirect URI is trusted are shown as a page, after it they travel back to
the app as query parameters, as Entra does. A completed sign-in redirects with a single-use code that the
token endpoint (entra.py) redeems."""

import html
import secrets
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import unquote, urlencode

from .entra_errors import EntraError, describe, is_loopback_http, parse_resource_scopes, timestamp, wants_cp1
from .state import App, Tenant, User, World, new_guid, secret_hash
from .tokens import client_info
from .web import Request, Response, html_page

CODE_LIFETIME = 600
SSO_COOKIE = "azuresim_sso"
PAGE_HEADERS = [
    # The pages need no script, frames or outside resources; say so.
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
]
# The authorize request's parameters, checked in this order once the redirect URI is trusted:
# (why it is refused, a test that is True when the request is wrong, fields for the message).
PARAMETER_RULES: tuple[tuple[str, Callable[[dict, App, str], bool], Callable[[dict, App], dict]], ...] = (
    ("not_multi_tenant_authorize", lambda p, app, kind: kind == "multi" and not app.multi_tenant,
     lambda p, app: {"client_id": app.client_id, "name": app.name}),
    ("unsupported_response_type", lambda p, app, kind: p.get("response_type") != "code",
     lambda p, app: {"response_type": p.get("response_type", "")}),
    ("unsupported_response_mode", lambda p, app, kind: p.get("response_mode", "query") != "query",
     lambda p, app: {"response_mode": p.get("response_mode")}),
    ("pkce_required", lambda p, app, kind: not p.get("code_challenge"), lambda p, app: {}),
    ("bad_challenge_method", lambda p, app, kind: p.get("code_challenge_method") != "S256",
     lambda p, app: {"method": p.get("code_challenge_method", "")}),
    ("missing_parameter", lambda p, app, kind: not p.get("scope", "").split(), lambda p, app: {"parameter": "scope"}),
)
# What a silent sign-in (prompt=none) cannot get past, in this order.
SILENT_REFUSALS: tuple[tuple[str, Callable[[User], bool]], ...] = (
    ("mfa_interaction", lambda user: user.mfa_required),
    ("consent_interaction", lambda user: user.consent_required),
)


def redirect(uri: str, params: dict) -> Response:
    return Response(302, headers=[
        ("Location", uri + ("&" if "?" in uri else "?") + urlencode(params)),
        ("Cache-Control", "no-store"),
    ])


class SignInPages:
    def __init__(self, world: World, urls: Callable) -> None:
        self.world, self.urls = world, urls  # urls() -> (https_url, http_url)

    def route(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        tail = "/".join(parts[1:]).lower()
        if tail == "oauth2/v2.0/authorize" and req.method in ("GET", "POST"):
            return self.authorize(req, unquote(parts[0]))
        if tail == "oauth2/v2.0/logout" and req.method in ("GET", "POST"):
            return self.logout(req)
        if req.path == "/" and req.method == "GET":
            return html_page(200, "azuresim", "<h1>azuresim</h1><p>Simulated Microsoft Entra ID sign-in pages. "
                             "Nothing to see here without an authorize request.</p>", PAGE_HEADERS)
        return html_page(404, "Not found", "<h1>Not found</h1>", PAGE_HEADERS)

    # -- authorize --------------------------------------------------------------------------
    def authorize(self, req: Request, segment: str) -> Response:
        params = req.query if req.method == "GET" else req.form()
        try:
            kind, tenant, app, redirect_uri = self._trusted_client(params, segment)
        except EntraError as err:
            return self._error_page(err)
        try:
            self._check_parameters(params, app, kind)
            candidates = tenant.users if tenant else list(self.world.users.values())
            user, silent, notice = self._choose_user(req, params, candidates)
            if user is None:
                return self._picker(req, params, app, tenant, candidates, notice)
            self._check_silent(user, app, silent)
        except EntraError as err:
            return self._back(redirect_uri, params.get("state"), err)
        if not silent:
            self.world.signed_in_interactively(user)
        return self._complete(params, app, user, redirect_uri, segment)

    def _trusted_client(self, params: dict, segment: str) -> tuple[str, Tenant | None, App, str]:
        """The tenant, the app and its redirect URI, each known: until then errors cannot go back to the app."""
        kind, tenant = self.world.resolve_tenant(segment)
        if kind is None:
            raise EntraError("tenant_not_found", segment=segment)
        app = self.world.apps.get(params.get("client_id", "").lower())
        if app is None:
            where = tenant.name if tenant else segment
            raise EntraError("app_not_in_directory", client_id=params.get("client_id", ""), where=where)
        redirect_uri = params.get("redirect_uri", "")
        allowed = (redirect_uri in app.redirect_uris if app.redirect_uris is not None
                   else is_loopback_http(redirect_uri))
        if not allowed:
            raise EntraError("redirect_mismatch", redirect_uri=redirect_uri, client_id=app.client_id)
        return kind, tenant, app, redirect_uri

    @staticmethod
    def _check_parameters(params: dict, app: App, kind: str) -> None:
        for why, wrong, fields in PARAMETER_RULES:
            if wrong(params, app, kind):
                raise EntraError(why, **fields(params, app))
        parse_resource_scopes(params.get("scope", "").split())
        wants_cp1(params.get("claims"))

    def _choose_user(self, req: Request, params: dict, candidates: list[User]) -> tuple[User | None, bool, str]:
        """(the user signing in or None for the picker, whether silently, a notice for the picker)."""
        by_upn = {u.upn.lower(): u for u in candidates}
        if req.method == "POST":
            user = by_upn.get(params.get("azuresim_upn", "").lower())
            return user, False, "" if user else "Pick one of the accounts below."
        hint, prompt = params.get("login_hint", ""), params.get("prompt", "")
        if prompt == "none":  # only an existing browser session may answer, and it must fit the hint
            user = self._sso_user(req)
            if user is None or user.upn.lower() not in by_upn or hint.lower() not in ("", user.upn.lower()):
                raise EntraError("login_required")
            return user, True, ""
        user = by_upn.get(hint.lower()) if prompt not in ("login", "select_account") else None
        notice = f"There is no account '{hint}' here; pick one of the accounts below." if user is None and hint else ""
        return user, False, notice

    @staticmethod
    def _check_silent(user: User, app: App, silent: bool) -> None:
        for why, refused in SILENT_REFUSALS if silent else ():
            if refused(user):
                raise EntraError(why, client_id=app.client_id, name=app.name)

    def _sso_user(self, req: Request) -> User | None:
        cookie = SimpleCookie(req.headers.get("Cookie") or "")
        morsel = cookie.get(SSO_COOKIE)
        with self.world.lock:
            upn = morsel and self.world.sso.get(morsel.value)
        return upn and self.world.users.get(upn)

    def _back(self, redirect_uri: str, state: str | None, err: EntraError) -> Response:
        """An error sent back to the (trusted) redirect URI, as Entra sends it."""
        answer = {
            "error": err.error,
            "error_description": describe(err.code, err.message, new_guid(), new_guid(), timestamp()),
            "error_uri": f"{self.urls()[0]}/error?code={err.code}",
        }
        if state is not None:
            answer["state"] = state
        return redirect(redirect_uri, answer)

    @staticmethod
    def _error_page(err: EntraError) -> Response:
        text = describe(err.code, err.message, new_guid(), new_guid(), timestamp())
        body = ("<h1>Sign-in error</h1><p class=err>Sorry, but we are having trouble signing you "
                f"in.</p><pre>{html.escape(text)}</pre>")
        return html_page(400, "Sign-in error", body, PAGE_HEADERS)

    def _picker(self, req: Request, params: dict, app: App, tenant: Tenant | None, candidates: list[User],
                notice: str) -> Response:
        e = html.escape
        hidden = "".join(
            f"<input type=hidden name='{e(k)}' value='{e(v)}'>" for k, v in params.items() if k != "azuresim_upn"
        )
        buttons = "".join(
            f"<button type=submit name=azuresim_upn value='{e(u.upn)}'>{e(u.name)}<br><small>{e(u.upn)} "
            f"&middot; {e(self.world.tenants[u.tenant_id].name)}</small></button>"
            for u in candidates
        )
        where = tenant.name if tenant else "any organisation"
        body = (
            f"<h1>Pick an account</h1><p>to continue to <b>{e(app.name)}</b> <small>(simulated Microsoft "
            f"Entra ID, {e(where)})</small></p>"
            + (f"<p class=err>{e(notice)}</p>" if notice else "")
            + f"<form method=post action='{e(req.path)}'>{hidden}{buttons}</form>"
        )
        return html_page(200, "Sign in to your account", body, PAGE_HEADERS)

    def _complete(self, params: dict, app: App, user: User, redirect_uri: str, segment: str) -> Response:
        code, sid, browser_session = secrets.token_urlsafe(48), new_guid(), secrets.token_urlsafe(24)
        now = time.time()
        with self.world.lock:
            self.world.codes[secret_hash(code)] = {
                "client_id": app.client_id,
                "redirect_uri": redirect_uri,
                "upn": user.upn.lower(),
                "segment": segment.lower(),
                "scopes": params.get("scope", "").split(),
                "nonce": params.get("nonce"),
                "claims": params.get("claims"),
                "sid": sid,
                "code_challenge": params["code_challenge"],
                "expires_at": now + CODE_LIFETIME,
                "used": False,
            }
            self.world.codes = {h: c for h, c in self.world.codes.items() if c["expires_at"] > now - CODE_LIFETIME}
            self.world.sso[browser_session] = user.upn.lower()
        answer = {"code": code}
        if params.get("state") is not None:
            answer["state"] = params["state"]
        answer["session_state"] = sid
        if params.get("client_info") == "1":
            answer["client_info"] = client_info(user)
        response = redirect(redirect_uri, answer)
        return response.header("Set-Cookie", f"{SSO_COOKIE}={browser_session}; Path=/; HttpOnly; SameSite=Lax")

    # -- logout -----------------------------------------------------------------------------
    def logout(self, req: Request) -> Response:
        params = req.query if req.method == "GET" else req.form()
        cookie = SimpleCookie(req.headers.get("Cookie") or "")
        if SSO_COOKIE in cookie:
            with self.world.lock:
                self.world.sso.pop(cookie[SSO_COOKIE].value, None)
        clear = ("Set-Cookie", f"{SSO_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        target = params.get("post_logout_redirect_uri", "")
        if is_loopback_http(target):
            return Response(302, headers=[("Location", target), clear, ("Cache-Control", "no-store")])
        return html_page(200, "Signed out", "<h1>You signed out of your account</h1><p>It's a good idea to close "
                         "all browser windows.</p>", PAGE_HEADERS + [clear])
