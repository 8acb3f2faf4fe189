"""Fake Microsoft Entra ID, the machine-facing half (served over TLS): OpenID discovery, JWKS and the token
endpoint (authorization-code and refresh-token grants). The browser-facing sign-in pages are signin.py.

Error answers follow Entra's shapes (entra_errors.py): JSON with ``error``, ``error_description`` starting
with an AADSTS code and ending with trace/correlation ids, and ``error_codes``.
"""

import base64
import binascii
import datetime
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from urllib.parse import unquote

from .behaviours import Behaviours
from .entra_errors import EntraError, error_body, parse_resource_scopes, wants_cp1
from .state import App, Tenant, User, World, new_guid, secret_hash
from .tokens import TokenService, b64url, client_info
from .web import Request, Response, json_response

NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "nbf", "name", "nonce", "oid", "tid", "preferred_username", "sid",
]
# The conditional-access policy a refresh grant names when MFA is required.
MFA_CLAIMS = json.dumps(
    {"access_token": {"capolids": {"essential": True, "values": ["c0a5e000-0000-4000-8000-00000000f0a1"]}}}
)


def _fmt_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%m/%d/%Y %H:%M:%S")


class Entra:
    def __init__(self, world: World, tokens: TokenService, urls: Callable) -> None:
        self.world, self.tokens, self.urls = world, tokens, urls  # urls() -> (https_url, http_url)
        # Tests set this to make the token endpoint reset every connection: Entra ID out of reach.
        self.token_endpoint_resets = False

    def route_https(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        tail = "/".join(parts[1:]).lower()
        if req.method == "GET" and tail == "v2.0/.well-known/openid-configuration":
            return self.discovery(unquote(parts[0]))
        if req.method == "GET" and tail == "discovery/v2.0/keys":
            return json_response(200, self.tokens.jwks(), [("Cache-Control", "max-age=86400")])
        if req.method == "POST" and tail == "oauth2/v2.0/token":
            return self.token(req, unquote(parts[0]))
        return json_response(404, {"error": "not_found", "error_description": "No such endpoint."})

    def _error_json(self, err: EntraError, correlation_id: str) -> Response:
        return json_response(err.status, error_body(err, self.urls()[0], correlation_id), NO_STORE)

    def _tenant(self, segment: str) -> tuple[str, Tenant | None]:
        kind, tenant = self.world.resolve_tenant(segment)
        if kind is None:
            raise EntraError("tenant_not_found", segment=segment)
        return kind, tenant

    # -- discovery --------------------------------------------------------------------------
    def discovery(self, segment: str) -> Response:
        https_url, http_url = self.urls()
        try:
            _, tenant = self._tenant(segment)
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
            "claims_supported": CLAIMS_SUPPORTED,
            "request_uri_parameter_supported": False,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": None,
            "cloud_instance_name": "azuresim",
        }
        return json_response(200, doc, [("Cache-Control", "max-age=86400")])

    # -- token ------------------------------------------------------------------------------
    def token(self, req: Request, segment: str) -> Response:
        if self.token_endpoint_resets:
            return Response(0, stream=Behaviours.reset)
        correlation_id = req.headers.get("client-request-id") or new_guid()
        form = req.form()
        grant_type = form.get("grant_type", "")
        who: dict = {"upn": None}
        try:
            return self._token(req, segment, form, grant_type, who)
        except EntraError as err:
            return self._error_json(err, correlation_id)
        finally:
            self.world.count_token_request(who["upn"], grant_type)

    def _client(self, req: Request, form: dict) -> App:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        auth = req.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                basic_id, _, basic_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                basic_id = basic_secret = ""
            client_id, secret = unquote(basic_id) or client_id, unquote(basic_secret)
        if not client_id:
            raise EntraError("missing_parameter", parameter="client_id")
        app = self.world.apps.get(client_id.lower())
        if app is None:
            raise EntraError("app_not_found", client_id=client_id)
        if not secret:
            raise EntraError("client_secret_missing")
        if not secrets.compare_digest(secret.encode(), app.secret.encode()):
            raise EntraError("client_secret_wrong", client_id=app.client_id)
        return app

    def _token(self, req: Request, segment: str, form: dict, grant_type: str, who: dict) -> Response:
        kind, tenant = self._tenant(segment)
        app = self._client(req, form)
        if kind == "multi" and not app.multi_tenant:
            raise EntraError("not_multi_tenant", client_id=app.client_id, name=app.name)
        if grant_type == "authorization_code":
            return self._code_grant(form, app, tenant, who)
        if grant_type == "refresh_token":
            return self._refresh_grant(form, app, tenant, who)
        if not grant_type:
            raise EntraError("missing_parameter", parameter="grant_type")
        raise EntraError("unsupported_grant_type", grant_type=grant_type)

    @staticmethod
    def _check_tenant(tenant: Tenant | None, user: User) -> None:
        if tenant is not None and tenant.id != user.tenant_id:
            raise EntraError("user_not_in_tenant", upn=user.upn, user_tenant=user.tenant_id, tenant=tenant.name)

    # -- the authorization-code grant -------------------------------------------------------
    def _redeem(self, code: str | None) -> dict:
        """The code's record, now used: single use, even if a check after this fails, as Entra does."""
        if not code:
            raise EntraError("missing_parameter", parameter="code")
        with self.world.lock:
            record = self.world.codes.get(secret_hash(code))
            if record is None:
                raise EntraError("grant_not_valid", what="code")
            if record["used"]:
                raise EntraError("code_redeemed")
            if record["expires_at"] < time.time():
                raise EntraError("code_expired")
            record["used"] = True
        return record

    def _code_grant(self, form: dict, app: App, tenant: Tenant | None, who: dict) -> Response:
        record = self._redeem(form.get("code"))
        user = self.world.users[record["upn"]]
        who["upn"] = user.upn
        if record["client_id"] != app.client_id:
            raise EntraError("other_client", what="code")
        if form.get("redirect_uri", "") != record["redirect_uri"]:
            raise EntraError("reply_uri_mismatch")
        verifier = form.get("code_verifier", "")
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        if not verifier or not secrets.compare_digest(challenge, record["code_challenge"]):
            raise EntraError("verifier_mismatch")
        self._check_tenant(tenant, user)
        scopes = form.get("scope", "").split() or record["scopes"]
        cp1 = wants_cp1(form.get("claims")) or wants_cp1(record["claims"])
        return self._issue(user, app, scopes, cp1, nonce=record["nonce"], sid=record["sid"])

    # -- the refresh-token grant ------------------------------------------------------------
    def _refresh_record(self, token: str | None) -> dict:
        if not token:
            raise EntraError("missing_parameter", parameter="refresh_token")
        with self.world.lock:
            record = self.world.refresh_tokens.get(secret_hash(token))
        if record is None:
            raise EntraError("grant_not_valid", what="refresh token")
        return record

    @staticmethod
    def _check_refresh_still_valid(record: dict, user: User, app: App) -> None:
        issued = _fmt_time(record["issued_at"])
        if record["client_id"] != app.client_id:
            raise EntraError("other_client", what="refresh token")
        if user.refresh_revoked or record["issued_at"] < user.refresh_revoked_at:
            raise EntraError("refresh_revoked", suberror="bad_token", issued=issued,
                             valid_from=_fmt_time(user.refresh_revoked_at))
        if record["expires_at"] < time.time():
            raise EntraError("refresh_expired", suberror="bad_token", issued=issued,
                             inactive=int(time.time() - record["issued_at"]))

    def _refresh_grant(self, form: dict, app: App, tenant: Tenant | None, who: dict) -> Response:
        record = self._refresh_record(form.get("refresh_token"))
        user = self.world.users[record["upn"]]
        who["upn"] = user.upn
        self._check_refresh_still_valid(record, user, app)
        self._check_tenant(tenant, user)
        scopes = form.get("scope", "").split() or record["scopes"]
        resource, _ = parse_resource_scopes(scopes)
        if user.mfa_required:
            raise EntraError("mfa_required", suberror="basic_action", claims=MFA_CLAIMS, resource=resource)
        if user.consent_required:
            raise EntraError("consent_required", suberror="consent_required", client_id=app.client_id, name=app.name)
        return self._issue(user, app, scopes, wants_cp1(form.get("claims")), sid=record["sid"])

    # -- issuing ----------------------------------------------------------------------------
    def _issue(self, user: User, app: App, scopes: list[str], cp1: bool, nonce: str | None = None,
               sid: str | None = None) -> Response:
        resource, resource_scopes = parse_resource_scopes(scopes)
        with self.world.lock:
            access_lifetime = self.world.access_lifetime
        scp = "user_impersonation" if resource_scopes else " ".join(s for s in scopes)
        access_token, claims = self.tokens.access_token(
            user, app.client_id, resource, scp=scp, xms_cc=["CP1"] if cp1 else None, lifetime=access_lifetime, sid=sid
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
            body["refresh_token"] = self._new_refresh_token(user, app, scopes, sid)
        if "openid" in scopes:
            body["id_token"] = self.tokens.id_token(user, app.client_id, nonce=nonce, sid=sid)
        body["client_info"] = client_info(user)
        return json_response(200, body, NO_STORE)

    def _new_refresh_token(self, user: User, app: App, scopes: list[str], sid: str | None) -> str:
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
                "expires_at": now + self.world.refresh_lifetime,
                "sid": sid,
            }
        return refresh_token
