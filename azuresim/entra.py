"""Fake Microsoft Entra ID: OpenID discovery, JWKS and the token endpoint (served over TLS), and
the browser-facing authorize (demo-user picker) and logout pages (served over plain http).

Error answers follow Entra's shapes: JSON with ``error``, ``error_description`` starting with an
AADSTS code and ending with trace/correlation ids, and ``error_codes``; authorize errors travel
back to a validated redirect_uri as query parameters, otherwise they are shown as a page.
"""

import base64
import binascii
import datetime
import hashlib
import html
import json
import secrets
import time
from http.cookies import SimpleCookie
from urllib.parse import unquote, urlencode, urlsplit

from .state import new_guid, secret_hash
from .tokens import b64url, client_info
from .web import Response, html_page, json_response

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH_AUDIENCE = "00000003-0000-0000-c000-000000000000"
CODE_LIFETIME = 600
SSO_COOKIE = "azuresim_sso"
PAGE_HEADERS = [
    # The pages need no script, frames or outside resources; say so.
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
]


class EntraError(Exception):
    def __init__(self, status, error, code, message, suberror=None, claims=None):
        super().__init__(message)
        self.status, self.error, self.code, self.message = status, error, code, message
        self.suberror, self.claims = suberror, claims


def _timestamp():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _describe(code, message, correlation_id, trace_id, timestamp):
    return (
        f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
    )


def _is_loopback_http(uri):
    try:
        parts = urlsplit(uri or "")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


def parse_resource_scopes(scopes):
    """Split requested scopes into (resource, resource scopes); raise EntraError on bad ones."""
    resource_scopes = [s for s in scopes if s.lower() not in OIDC_SCOPES]
    resources = set()
    for scope in resource_scopes:
        resource, _, permission = scope.rpartition("/")
        if not resource.startswith(("https://", "api://")) or permission not in (
            "user_impersonation",
            ".default",
        ):
            raise EntraError(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist.",
            )
        resources.add(resource)
    if len(resources) > 1:
        raise EntraError(
            400,
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains more than one "
            f"resource. Scope {' '.join(resource_scopes)} is not valid.",
        )
    return (resources.pop() if resources else GRAPH_AUDIENCE), resource_scopes


def wants_cp1(claims_text):
    """True when a ``claims`` request asks for the CP1 client capability (CAE)."""
    if not claims_text:
        return False
    try:
        claims = json.loads(claims_text)
        values = claims.get("access_token", {}).get("xms_cc", {}).get("values", [])
    except (ValueError, AttributeError):
        raise EntraError(
            400,
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid. The 'claims' parameter is not valid JSON.",
        ) from None
    return "CP1" in values


class Entra:
    def __init__(self, world, tokens, urls):
        self.world, self.tokens, self.urls = world, tokens, urls  # urls() -> (https_url, http_url)

    # -- routing ----------------------------------------------------------------------------
    def route_https(self, req):
        parts = req.path.strip("/").split("/")
        tail = "/".join(parts[1:]).lower()
        if req.method == "GET" and tail == "v2.0/.well-known/openid-configuration":
            return self.discovery(unquote(parts[0]))
        if req.method == "GET" and tail == "discovery/v2.0/keys":
            return json_response(200, self.tokens.jwks(), [("Cache-Control", "max-age=86400")])
        if req.method == "POST" and tail == "oauth2/v2.0/token":
            return self.token(req, unquote(parts[0]))
        return json_response(404, {"error": "not_found", "error_description": "No such endpoint."})

    def route_http(self, req):
        parts = req.path.strip("/").split("/")
        tail = "/".join(parts[1:]).lower()
        if tail == "oauth2/v2.0/authorize" and req.method in ("GET", "POST"):
            return self.authorize(req, unquote(parts[0]))
        if tail == "oauth2/v2.0/logout" and req.method in ("GET", "POST"):
            return self.logout(req)
        if req.path == "/" and req.method == "GET":
            return html_page(
                200,
                "azuresim",
                "<h1>azuresim</h1><p>Simulated Microsoft Entra ID sign-in pages. Nothing to see here "
                "without an authorize request.</p>",
                PAGE_HEADERS,
            )
        return html_page(404, "Not found", "<h1>Not found</h1>", PAGE_HEADERS)

    # -- discovery --------------------------------------------------------------------------
    def _tenant_or_error(self, segment):
        kind, tenant = self.world.resolve_tenant(segment)
        if kind is None:
            raise EntraError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        return kind, tenant

    def discovery(self, segment):
        https_url, http_url = self.urls()
        try:
            kind, tenant = self._tenant_or_error(segment)
        except EntraError as err:
            return self._error_json(err, new_guid())
        # Entra names the GUID in a tenant's document; the multi-tenant ones keep the segment and
        # carry a "{tenantid}" placeholder in the issuer.
        seg = tenant.id if tenant else segment.lower()
        issuer_tenant = tenant.id if tenant else "{tenantid}"
        doc = {
            "issuer": f"{https_url}/{issuer_tenant}/v2.0",
            "authorization_endpoint": f"{http_url}/{seg}/oauth2/v2.0/authorize",
            "token_endpoint": f"{https_url}/{seg}/oauth2/v2.0/token",
            "end_session_endpoint": f"{http_url}/{seg}/oauth2/v2.0/logout",
            "jwks_uri": f"{https_url}/{seg}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_modes_supported": ["query"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "nbf",
                "name",
                "nonce",
                "oid",
                "tid",
                "preferred_username",
                "sid",
            ],
            "request_uri_parameter_supported": False,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": None,
            "cloud_instance_name": "azuresim",
        }
        return json_response(200, doc, [("Cache-Control", "max-age=86400")])

    # -- errors -----------------------------------------------------------------------------
    def _error_json(self, err, correlation_id):
        https_url, _ = self.urls()
        trace_id, ts = new_guid(), _timestamp()
        body = {
            "error": err.error,
            "error_description": _describe(err.code, err.message, correlation_id, trace_id, ts),
            "error_codes": [err.code],
            "timestamp": ts,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{https_url}/error?code={err.code}",
        }
        if err.suberror:
            body["suberror"] = err.suberror
        if err.claims:
            body["claims"] = err.claims
        return json_response(err.status, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # -- authorize --------------------------------------------------------------------------
    def _redirect_allowed(self, app, redirect_uri):
        if app.redirect_uris is not None:
            return redirect_uri in app.redirect_uris
        return _is_loopback_http(redirect_uri)

    @staticmethod
    def _redirect(uri, params):
        return Response(
            302,
            headers=[
                ("Location", uri + ("&" if "?" in uri else "?") + urlencode(params)),
                ("Cache-Control", "no-store"),
            ],
        )

    def _error_page(self, err):
        text = _describe(err.code, err.message, new_guid(), new_guid(), _timestamp())
        body = (
            "<h1>Sign-in error</h1><p class=err>Sorry, but we are having trouble signing you "
            f"in.</p><pre>{html.escape(text)}</pre>"
        )
        return html_page(400, "Sign-in error", body, PAGE_HEADERS)

    def _sso_user(self, req):
        cookie = SimpleCookie(req.headers.get("Cookie") or "")
        morsel = cookie.get(SSO_COOKIE)
        with self.world.lock:
            upn = morsel and self.world.sso.get(morsel.value)
        return upn and self.world.users.get(upn)

    def authorize(self, req, segment):
        params = req.query if req.method == "GET" else req.form()
        try:
            kind, tenant = self._tenant_or_error(segment)
        except EntraError as err:
            return self._error_page(err)
        app = self.world.apps.get(params.get("client_id", "").lower())
        if app is None:
            where = tenant.name if tenant else segment
            return self._error_page(
                EntraError(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{params.get('client_id', '')}' was not found in the "
                    f"directory '{where}'. This can happen if the application has not been installed by "
                    "the administrator of the tenant or consented to by any user in the tenant. You may "
                    "have sent your authentication request to the wrong tenant.",
                )
            )
        redirect_uri = params.get("redirect_uri", "")
        if not self._redirect_allowed(app, redirect_uri):
            return self._error_page(
                EntraError(
                    400,
                    "invalid_request",
                    50011,
                    f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                    f"redirect URIs configured for the application '{app.client_id}'. Make sure the "
                    "redirect URI sent in the request matches one added to your application in the Azure "
                    "portal.",
                )
            )
        # From here on the redirect_uri is trusted, so errors go back to the app.
        state = params.get("state")

        def back(err):
            trace_id, ts, corr = new_guid(), _timestamp(), new_guid()
            answer = {
                "error": err.error,
                "error_description": _describe(err.code, err.message, corr, trace_id, ts),
                "error_uri": f"{self.urls()[0]}/error?code={err.code}",
            }
            if state is not None:
                answer["state"] = state
            return self._redirect(redirect_uri, answer)

        try:
            self._check_authorize_params(params, app, kind)
        except EntraError as err:
            return back(err)
        candidates = tenant.users if tenant else list(self.world.users.values())
        by_upn = {u.upn.lower(): u for u in candidates}
        prompt = params.get("prompt", "")
        notice = ""
        silent = False
        if req.method == "POST":
            user = by_upn.get(params.get("azuresim_upn", "").lower())
            if user is None:
                notice = "Pick one of the accounts below."
        else:
            hint = params.get("login_hint", "")
            user = by_upn.get(hint.lower()) if prompt not in ("login", "select_account", "none") else None
            if prompt == "none":  # only an existing browser session may answer, and it must fit the hint
                user, silent = self._sso_user(req), True
                if user is None or user.upn.lower() not in by_upn or hint.lower() not in ("", user.upn.lower()):
                    return back(
                        EntraError(
                            400,
                            "login_required",
                            50058,
                            "A silent sign-in request was sent but no user is signed in.",
                        )
                    )
            if user is None and hint:
                notice = f"There is no account '{hint}' here; pick one of the accounts below."
        if user is None:
            return self._picker(req, params, app, tenant, candidates, notice)
        if silent and user.mfa_required:
            return back(
                EntraError(
                    400,
                    "interaction_required",
                    50076,
                    "Due to a configuration change made by your administrator, or because you moved to a "
                    "new location, you must use multi-factor authentication.",
                )
            )
        if silent and user.consent_required:
            return back(EntraError(400, "consent_required", 65001, self._consent_message(app)))
        if not silent:
            self.world.signed_in_interactively(user)
        return self._complete(params, app, user, redirect_uri, state, segment)

    def _check_authorize_params(self, params, app, kind):
        if kind == "multi" and not app.multi_tenant:
            raise EntraError(
                400,
                "invalid_request",
                50194,
                f"Application '{app.client_id}'({app.name}) is not configured as a multi-tenant "
                "application. Use a tenant-specific endpoint or configure the application to be "
                "multi-tenant.",
            )
        if params.get("response_type") != "code":
            raise EntraError(
                400,
                "unsupported_response_type",
                700054,
                f"response_type '{params.get('response_type', '')}' is not enabled for the application. "
                "This simulator supports the authorization code flow only.",
            )
        if params.get("response_mode", "query") != "query":
            raise EntraError(
                400,
                "invalid_request",
                900144,
                f"response_mode '{params['response_mode']}' is not supported by this simulator; use query.",
            )
        if not params.get("code_challenge"):
            raise EntraError(
                400,
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required. Send code_challenge with code_challenge_method=S256.",
            )
        if params.get("code_challenge_method") != "S256":
            raise EntraError(
                400,
                "invalid_request",
                501631,
                f"Invalid code_challenge_method '{params.get('code_challenge_method', '')}'. Only S256 is supported.",
            )
        scopes = params.get("scope", "").split()
        if not scopes:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        parse_resource_scopes(scopes)
        wants_cp1(params.get("claims"))

    def _picker(self, req, params, app, tenant, candidates, notice):
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

    def _complete(self, params, app, user, redirect_uri, state, segment):
        code = secrets.token_urlsafe(48)
        sid = new_guid()
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
                "expires_at": time.time() + CODE_LIFETIME,
                "used": False,
            }
            self.world.codes = {
                h: c for h, c in self.world.codes.items() if c["expires_at"] > time.time() - CODE_LIFETIME
            }
            browser_session = secrets.token_urlsafe(24)
            self.world.sso[browser_session] = user.upn.lower()
        answer = {"code": code}
        if state is not None:
            answer["state"] = state
        answer["session_state"] = sid
        if params.get("client_info") == "1":
            answer["client_info"] = client_info(user)
        response = self._redirect(redirect_uri, answer)
        return response.header("Set-Cookie", f"{SSO_COOKIE}={browser_session}; Path=/; HttpOnly; SameSite=Lax")

    # -- logout -----------------------------------------------------------------------------
    def logout(self, req):
        params = req.query if req.method == "GET" else req.form()
        cookie = SimpleCookie(req.headers.get("Cookie") or "")
        if SSO_COOKIE in cookie:
            with self.world.lock:
                self.world.sso.pop(cookie[SSO_COOKIE].value, None)
        clear = ("Set-Cookie", f"{SSO_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        target = params.get("post_logout_redirect_uri", "")
        if _is_loopback_http(target):
            return Response(302, headers=[("Location", target), clear, ("Cache-Control", "no-store")])
        return html_page(
            200,
            "Signed out",
            "<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>",
            PAGE_HEADERS + [clear],
        )

    # -- token ------------------------------------------------------------------------------
    def token(self, req, segment):
        correlation_id = req.headers.get("client-request-id") or new_guid()
        form = req.form()
        grant_type = form.get("grant_type", "")
        who = {"upn": None}
        try:
            return self._token(req, segment, form, grant_type, who)
        except EntraError as err:
            return self._error_json(err, correlation_id)
        finally:
            self.world.count_token_request(who["upn"], grant_type)

    def _client(self, req, form):
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        auth = req.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                basic_id, _, basic_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                basic_id = basic_secret = ""
            client_id, secret = unquote(basic_id) or client_id, unquote(basic_secret)
        if not client_id:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = self.world.apps.get(client_id.lower())
        if app is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory. You may have "
                "sent your authentication request to the wrong tenant.",
            )
        if not secret:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not secrets.compare_digest(secret.encode(), app.secret.encode()):
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                "client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
            )
        return app

    def _token(self, req, segment, form, grant_type, who):
        kind, tenant = self._tenant_or_error(segment)
        app = self._client(req, form)
        if kind == "multi" and not app.multi_tenant:
            raise EntraError(
                400,
                "invalid_request",
                50194,
                f"Application '{app.client_id}'({app.name}) is not configured as a multi-tenant application.",
            )
        if grant_type == "authorization_code":
            return self._code_grant(form, app, segment, tenant, who)
        if grant_type == "refresh_token":
            return self._refresh_grant(form, app, tenant, who)
        if not grant_type:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    def _check_tenant(self, tenant, user):
        if tenant is not None and tenant.id != user.tenant_id:
            raise EntraError(
                400,
                "invalid_grant",
                50020,
                f"User account '{user.upn}' from identity provider "
                f"'https://sts.windows.net/{user.tenant_id}/' does not exist in tenant '{tenant.name}' and "
                "cannot access the application in that tenant.",
            )

    def _code_grant(self, form, app, segment, tenant, who):
        code = form.get("code")
        if not code:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        with self.world.lock:
            record = self.world.codes.get(secret_hash(code))
            if record is None:
                raise EntraError(
                    400,
                    "invalid_grant",
                    9002313,
                    "Invalid request. Request is malformed or invalid. The code is not valid.",
                )
            if record["used"]:
                raise EntraError(
                    400,
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
                    "or use an existing refresh token.",
                )
            if record["expires_at"] < time.time():
                raise EntraError(
                    400,
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to inactivity. Send "
                    "a new interactive authorization request for this user and resource.",
                )
            record["used"] = True  # single use, even if a check below fails, as Entra does
        user = self.world.users[record["upn"]]
        who["upn"] = user.upn
        if record["client_id"] != app.client_id:
            raise EntraError(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed. The code was issued to another client.",
            )
        if form.get("redirect_uri", "") != record["redirect_uri"]:
            raise EntraError(
                400,
                "invalid_grant",
                500117,
                "The reply uri specified in the request isn't expected. It must be the one used in the "
                "authorization request.",
            )
        verifier = form.get("code_verifier", "")
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        if not verifier or not secrets.compare_digest(challenge, record["code_challenge"]):
            raise EntraError(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        self._check_tenant(tenant, user)
        scopes = form.get("scope", "").split() or record["scopes"]
        cp1 = wants_cp1(form.get("claims")) or wants_cp1(record["claims"])
        return self._issue(user, app, scopes, cp1, nonce=record["nonce"], sid=record["sid"])

    def _refresh_grant(self, form, app, tenant, who):
        token = form.get("refresh_token")
        if not token:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        with self.world.lock:
            record = self.world.refresh_tokens.get(secret_hash(token))
        if record is None:
            raise EntraError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid. The refresh token is not valid.",
            )
        user = self.world.users[record["upn"]]
        who["upn"] = user.upn
        issued = _fmt_time(record["issued_at"])
        if record["client_id"] != app.client_id:
            raise EntraError(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed. The refresh token was issued to another client.",
            )
        if user.refresh_revoked or record["issued_at"] < user.refresh_revoked_at:
            raise EntraError(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
                f"The user might have changed or reset their password. The grant was issued on '{issued}' "
                "and the TokensValidFrom date (before which tokens are not valid) for this user is "
                f"'{_fmt_time(user.refresh_revoked_at)}'.",
                suberror="bad_token",
            )
        if record["expires_at"] < time.time():
            raise EntraError(
                400,
                "invalid_grant",
                700082,
                f"The refresh token has expired due to inactivity. The token was issued on {issued} and "
                f"was inactive for {int(time.time() - record['issued_at'])} seconds.",
                suberror="bad_token",
            )
        self._check_tenant(tenant, user)
        scopes = form.get("scope", "").split() or record["scopes"]
        resource, _ = parse_resource_scopes(scopes)
        if user.mfa_required:
            raise EntraError(
                400,
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to a new "
                f"location, you must use multi-factor authentication to access '{resource}'.",
                suberror="basic_action",
                claims=json.dumps(
                    {
                        "access_token": {
                            "capolids": {
                                "essential": True,
                                "values": ["c0a5e000-0000-4000-8000-00000000f0a1"],
                            }
                        }
                    }
                ),
            )
        if user.consent_required:
            raise EntraError(400, "invalid_grant", 65001, self._consent_message(app), suberror="consent_required")
        return self._issue(user, app, scopes, wants_cp1(form.get("claims")), sid=record["sid"])

    @staticmethod
    def _consent_message(app):
        return (
            f"The user or administrator has not consented to use the application with ID '{app.client_id}' "
            f"named '{app.name}'. Send an interactive authorization request for this user and resource."
        )

    def _issue(self, user, app, scopes, cp1, nonce=None, sid=None):
        resource, resource_scopes = parse_resource_scopes(scopes)
        with self.world.lock:
            access_lifetime, refresh_lifetime = self.world.access_lifetime, self.world.refresh_lifetime
        scp = "user_impersonation" if resource_scopes else " ".join(s for s in scopes)
        access_token, claims = self.tokens.access_token(
            user,
            app.client_id,
            resource,
            scp=scp,
            xms_cc=["CP1"] if cp1 else None,
            lifetime=access_lifetime,
            sid=sid,
        )
        self.world.record_uti(user.oid, claims["uti"])
        body = {
            "token_type": "Bearer",
            "scope": " ".join(resource_scopes or [s for s in scopes if s != "offline_access"]),
            "expires_in": access_lifetime,
            "ext_expires_in": access_lifetime,
            "access_token": access_token,
        }
        if "offline_access" in scopes:  # Entra v2 issues refresh tokens only when asked to
            refresh_token = secrets.token_urlsafe(64)
            now = time.time()
            with self.world.lock:
                self.world.refresh_tokens[secret_hash(refresh_token)] = {
                    "upn": user.upn.lower(),
                    "oid": user.oid,
                    "tid": user.tenant_id,
                    "client_id": app.client_id,
                    "scopes": scopes,
                    "issued_at": now,
                    "expires_at": now + refresh_lifetime,
                    "sid": sid,
                }
            body["refresh_token"] = refresh_token
        if "openid" in scopes:
            body["id_token"] = self.tokens.id_token(user, app.client_id, nonce=nonce, sid=sid)
        body["client_info"] = client_info(user)
        return json_response(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


def _fmt_time(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%m/%d/%Y %H:%M:%S")
