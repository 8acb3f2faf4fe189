"""What the simulated Entra ID's two faces (the token endpoint in entra.py, the sign-in pages in signin.py)
share: every error they answer, as one table (why -> HTTP status, OAuth error, AADSTS code, message
template), the AADSTS description Entra writes, and the request parameters both parse (scopes, the CP1
claims request, loopback redirect URIs)."""

import datetime
import json
from typing import Any
from urllib.parse import urlsplit

from .state import new_guid

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH_AUDIENCE = "00000003-0000-0000-c000-000000000000"
_MFA = ("Due to a configuration change made by your administrator, or because you moved to a new location, you "
        "must use multi-factor authentication")
_CONSENT = ("The user or administrator has not consented to use the application with ID '{client_id}' named "
            "'{name}'. Send an interactive authorization request for this user and resource.")
_MULTI = "Application '{client_id}'({name}) is not configured as a multi-tenant application."
_MALFORMED = "Invalid request. Request is malformed or invalid. "

ERRORS: dict[str, tuple[int, str, int, str]] = {
    # tenant, application, redirect
    "tenant_not_found": (400, "invalid_tenant", 90002,
                         "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are "
                         "signing into the correct cloud."),
    "app_not_in_directory": (400, "unauthorized_client", 700016,
                             "Application with identifier '{client_id}' was not found in the directory '{where}'. "
                             "This can happen if the application has not been installed by the administrator of the "
                             "tenant or consented to by any user in the tenant. You may have sent your "
                             "authentication request to the wrong tenant."),
    "app_not_found": (400, "unauthorized_client", 700016,
                      "Application with identifier '{client_id}' was not found in the directory. You may have sent "
                      "your authentication request to the wrong tenant."),
    "redirect_mismatch": (400, "invalid_request", 50011,
                          "The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                          "URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the "
                          "request matches one added to your application in the Azure portal."),
    "not_multi_tenant_authorize": (400, "invalid_request", 50194,
                                   _MULTI[:-1] + ". Use a tenant-specific endpoint or configure the application to "
                                   "be multi-tenant."),
    "not_multi_tenant": (400, "invalid_request", 50194, _MULTI),
    # the authorize request's parameters
    "missing_parameter": (400, "invalid_request", 900144,
                          "The request body must contain the following parameter: '{parameter}'."),
    "unsupported_response_type": (400, "unsupported_response_type", 700054,
                                  "response_type '{response_type}' is not enabled for the application. This "
                                  "simulator supports the authorization code flow only."),
    "unsupported_response_mode": (400, "invalid_request", 900144,
                                  "response_mode '{response_mode}' is not supported by this simulator; use query."),
    "pkce_required": (400, "invalid_request", 9002325,
                      "Proof Key for Code Exchange is required. Send code_challenge with code_challenge_method=S256."),
    "bad_challenge_method": (400, "invalid_request", 501631,
                             "Invalid code_challenge_method '{method}'. Only S256 is supported."),
    "scope_unknown": (400, "invalid_scope", 70011,
                      "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not "
                      "exist."),
    "scope_many_resources": (400, "invalid_scope", 28000,
                             "Provided value for the input parameter scope is not valid because it contains more "
                             "than one resource. Scope {scopes} is not valid."),
    "claims_not_json": (400, "invalid_request", 9002313,
                        _MALFORMED + "The 'claims' parameter is not valid JSON."),
    # silent sign-in
    "login_required": (400, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."),
    "mfa_interaction": (400, "interaction_required", 50076, _MFA + "."),
    "consent_interaction": (400, "consent_required", 65001, _CONSENT),
    # the token endpoint: the client
    "client_secret_missing": (401, "invalid_client", 7000218,
                              "The request body must contain the following parameter: 'client_assertion' or "
                              "'client_secret'."),
    "client_secret_wrong": (401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in the request is the "
                            "client secret value, not the client secret ID, for a secret added to app "
                            "'{client_id}'."),
    "unsupported_grant_type": (400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type '{grant_type}'."),
    # the grants
    "grant_not_valid": (400, "invalid_grant", 9002313, _MALFORMED + "The {what} is not valid."),
    "code_redeemed": (400, "invalid_grant", 54005,
                      "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                      "existing refresh token."),
    "code_expired": (400, "invalid_grant", 70008,
                     "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                     "interactive authorization request for this user and resource."),
    "other_client": (400, "invalid_grant", 70000,
                     "Provided grant is invalid or malformed. The {what} was issued to another client."),
    "reply_uri_mismatch": (400, "invalid_grant", 500117,
                           "The reply uri specified in the request isn't expected. It must be the one used in the "
                           "authorization request."),
    "verifier_mismatch": (400, "invalid_grant", 501481,
                          "The Code_Verifier does not match the code_challenge supplied in the authorization "
                          "request."),
    "user_not_in_tenant": (400, "invalid_grant", 50020,
                           "User account '{upn}' from identity provider 'https://sts.windows.net/{user_tenant}/' does "
                           "not exist in tenant '{tenant}' and cannot access the application in that tenant."),
    "refresh_revoked": (400, "invalid_grant", 50173,
                        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The "
                        "user might have changed or reset their password. The grant was issued on '{issued}' and the "
                        "TokensValidFrom date (before which tokens are not valid) for this user is '{valid_from}'."),
    "refresh_expired": (400, "invalid_grant", 700082,
                        "The refresh token has expired due to inactivity. The token was issued on {issued} and was "
                        "inactive for {inactive} seconds."),
    "mfa_required": (400, "invalid_grant", 50076, _MFA + " to access '{resource}'."),
    "consent_required": (400, "invalid_grant", 65001, _CONSENT),
}


class EntraError(Exception):
    """One refusal: ``why`` names its row in ERRORS, ``fields`` fill the message template."""

    def __init__(self, why: str, *, suberror: str | None = None, claims: str | None = None, **fields: Any) -> None:
        self.status, self.error, self.code, template = ERRORS[why]
        self.why, self.message = why, template.format(**fields)
        super().__init__(self.message)
        self.suberror, self.claims = suberror, claims


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def describe(code: int, message: str, correlation_id: str, trace_id: str, stamp: str) -> str:
    """Entra's error_description: the AADSTS code and message, then trace and correlation ids."""
    return f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {stamp}"


def is_loopback_http(uri: str | None) -> bool:
    try:
        parts = urlsplit(uri or "")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


def parse_resource_scopes(scopes: list[str]) -> tuple[str, list[str]]:
    """Split requested scopes into (resource, resource scopes); raise EntraError on bad ones."""
    resource_scopes = [s for s in scopes if s.lower() not in OIDC_SCOPES]
    resources = set()
    for scope in resource_scopes:
        resource, _, permission = scope.rpartition("/")
        if not resource.startswith(("https://", "api://")) or permission not in ("user_impersonation", ".default"):
            raise EntraError("scope_unknown", scope=scope)
        resources.add(resource)
    if len(resources) > 1:
        raise EntraError("scope_many_resources", scopes=" ".join(resource_scopes))
    return (resources.pop() if resources else GRAPH_AUDIENCE), resource_scopes


def wants_cp1(claims_text: str | None) -> bool:
    """True when a ``claims`` request asks for the CP1 client capability (CAE)."""
    if not claims_text:
        return False
    try:
        claims = json.loads(claims_text)
        values = claims.get("access_token", {}).get("xms_cc", {}).get("values", [])
    except (ValueError, AttributeError):
        raise EntraError("claims_not_json") from None
    return "CP1" in values


def error_body(err: EntraError, https_url: str, correlation_id: str) -> dict:
    """The JSON error answer of the token endpoint and discovery."""
    trace_id, stamp = new_guid(), timestamp()
    body: dict[str, Any] = {
        "error": err.error,
        "error_description": describe(err.code, err.message, correlation_id, trace_id, stamp),
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{https_url}/error?code={err.code}",
    }
    if err.suberror:
        body["suberror"] = err.suberror
    if err.claims:
        body["claims"] = err.claims
    return body

