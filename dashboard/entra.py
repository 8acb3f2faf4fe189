"""Microsoft Entra ID through MSAL: the sign-in flow and each user's delegated token for ARM.

Sign-in is MSAL's authorization-code flow with PKCE and nonce; the pending flow waits in the server-side
session under its `state`, so several tabs can sign in at once. Tokens for ARM come silently from the
user's own token cache (dashboard.tokencache), refreshed by MSAL with the refresh token; when Azure wants
the user back (expired or revoked grant, consent, MFA, a claims challenge) the caller gets
`interaction_required` and sends the user to sign in.
"""

import logging
import threading
import warnings
from dataclasses import dataclass

import msal
import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.views.decorators.debug import sensitive_variables

from dashboard import tokencache
from dashboard.models import User

log = logging.getLogger(__name__)

_lock = threading.Lock()
_http: requests.Session | None = None
# MSAL keeps discovery documents here (and briefly replays failed token requests); one per process.
_http_cache: dict = {}
_end_session_endpoint: str | None = None
# Each user's decrypted token cache and the MSAL app over it, kept by the process while the stored cache's
# version is unchanged (read with the check, checks.models.CheckQuerySet.for_run): decrypting and rebuilding them
# on every check was 11% of a worker's CPU.
# {user pk: _Held}; a sign-in, a refresh by another process or a sign-out moves or removes the version.
_held: dict = {}


class _TimeoutSession(requests.Session):
    """MSAL passes no timeout to a client it is given; without one a silent Entra ID hangs a worker."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", (settings.ARM_CONNECT_TIMEOUT, settings.ENTRA_READ_TIMEOUT))
        return super().request(*args, **kwargs)


def http_client() -> requests.Session:
    global _http
    with _lock:
        if _http is None:
            _http = _TimeoutSession()
            if settings.AZURE_CA_BUNDLE:
                _http.verify = settings.AZURE_CA_BUNDLE
                _http.trust_env = False
        return _http


def reset(**kwargs) -> None:
    """Forget the process-wide HTTP session and MSAL's HTTP cache (settings changed, or a new test)."""
    global _http, _end_session_endpoint
    with _lock:
        if _http is not None:
            _http.close()
        _http = None
        _http_cache.clear()
        _held.clear()
        _end_session_endpoint = None


setting_changed.connect(reset)


def authority() -> str:
    return f"{settings.AZURE_AUTHORITY_HOST}/{settings.AZURE_TENANT_ID}"


def scopes() -> list[str]:
    return [settings.AZURE_ARM_SCOPE]


def build_app(cache: msal.TokenCache | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        settings.AZURE_CLIENT_ID,
        client_credential=settings.AZURE_CLIENT_SECRET,
        authority=authority(),
        token_cache=cache,
        http_client=http_client(),
        http_cache=_http_cache,
        instance_discovery=settings.AZURE_INSTANCE_DISCOVERY,
        # Continuous Access Evaluation: tell Entra we can handle claims challenges.
        client_capabilities=["CP1"],
    )


def start_sign_in(
    redirect_uri: str, *, login_hint: str | None = None, claims_challenge: str | None = None
) -> dict:
    """A new pending flow; its `auth_uri` is where the browser goes, its `state` keys it in the session."""
    with warnings.catch_warnings():
        # MSAL recommends form_post, but that arrives as a cross-site POST which the SameSite=Lax session
        # cookie does not accompany, so the pending flow could not be found; query works with Lax, and
        # PKCE + state + nonce protect the code in the URL.
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
        return build_app().initiate_auth_code_flow(
            scopes(),
            redirect_uri=redirect_uri,
            login_hint=login_hint or None,
            claims_challenge=claims_challenge,
            response_mode="query",
        )


@dataclass
class SignInResult:
    cache: msal.SerializableTokenCache
    claims: dict
    home_account_id: str


class SignInFailed(Exception):
    def __init__(self, error: str, description: str = ""):
        super().__init__(error)
        self.error = error
        self.description = description


@sensitive_variables("flow", "auth_response", "result", "cache")
def finish_sign_in(flow: dict, auth_response: dict) -> SignInResult:
    cache = msal.SerializableTokenCache()
    app = build_app(cache)
    try:
        result = app.acquire_token_by_auth_code_flow(flow, auth_response, scopes=scopes())
    except ValueError as exc:  # state mismatch, or a response that does not belong to this flow
        raise SignInFailed("invalid_response", str(exc)) from None
    if "error" in result:
        raise SignInFailed(result.get("error", ""), result.get("error_description", ""))
    claims = result.get("id_token_claims") or {}
    accounts = app.get_accounts()
    home_account_id = accounts[0]["home_account_id"] if accounts else ""
    return SignInResult(cache=cache, claims=claims, home_account_id=home_account_id)


@dataclass
class TokenAnswer:
    access_token: str | None = None
    error: str = ""
    error_description: str = ""

    @property
    def interaction_required(self) -> bool:
        # Anything but an unreachable identity provider means only the user, in a browser, can help.
        return self.access_token is None and self.error != "network"


@dataclass
class _Held:
    cache: tokencache.UserTokenCache
    app: msal.ConfidentialClientApplication
    lock: threading.Lock


# `stored_version` not read by the caller: read it here.
UNREAD = object()


def _held_for(user: User, version=UNREAD) -> _Held:
    """The user's cache and app as stored now: this process's copy while the stored version is unchanged
    (one small read, or `version` as the caller just read it: None when none is stored), else read and
    decrypted again."""
    if version is UNREAD:
        version = tokencache.stored_version(user)
    with _lock:
        held = _held.get(user.pk)
    if held is not None and version is not None and held.cache.version == version:
        return held
    cache = tokencache.load(user)
    held = _Held(cache=cache, app=build_app(cache), lock=threading.Lock())
    with _lock:
        if cache.version is None:
            _held.pop(user.pk, None)
        else:
            _held[user.pk] = held
    return held


@sensitive_variables("cache", "result")
def arm_token(user: User, *, claims_challenge: str | None = None, stored_version=UNREAD) -> TokenAnswer:
    """The user's ARM token, silently from their cache; never prompts. `stored_version`: the version of the
    user's stored cache, when the caller read it with its own data a moment ago (checks' claim read)."""
    held = _held_for(user, stored_version)
    # One thread at a time per cache: a refresh is then done once, and written back once (compare-and-swap).
    with held.lock:
        app = held.app
        account = next(
            (a for a in app.get_accounts() if a.get("home_account_id") == user.home_account_id), None
        )
        if account is None:
            return TokenAnswer(error="no_account", error_description="No Azure sign-in is stored for this user.")
        try:
            result = app.acquire_token_silent_with_error(scopes(), account, claims_challenge=claims_challenge)
        except requests.RequestException as exc:
            return TokenAnswer(error="network",
                               error_description=f"Entra ID could not be reached ({type(exc).__name__}).")
        finally:
            _save(user, held)
    if result and "access_token" in result:
        return TokenAnswer(access_token=result["access_token"])
    if not result:
        return TokenAnswer(error="no_token", error_description="No token could be obtained without signing in.")
    return TokenAnswer(error=result.get("error", "unknown"), error_description=result.get("error_description", ""))


def _save(user: User, held: _Held) -> None:
    """Write back what MSAL changed; our copy then matches the new stored version, or (lost the race) is dropped."""
    if not held.cache.has_state_changed:
        return
    if tokencache.save(user, held.cache) and held.cache.version is not None:
        held.cache.version += 1
        return
    with _lock:
        if _held.get(user.pk) is held:
            del _held[user.pk]


def token_source(user: User, first: TokenAnswer | None = None, *, stored_version=UNREAD):
    """What armclient asks for a token: `user`'s ARM token for a claims challenge (or None), silently from their
    cache; `first`, when given, answers the first ask (a token the caller already fetched). `stored_version`
    (as arm_token's) serves the first ask only: a renewal for a claims challenge reads it again."""

    def tokens(claims: str | None) -> TokenAnswer:
        if claims is None and first is not None:
            return first
        if claims is None:
            return arm_token(user, stored_version=stored_version)
        return arm_token(user, claims_challenge=claims)

    return tokens


def sign_out(user: User) -> None:
    """Remove the user's account from their token cache, then the cache itself."""
    cache = tokencache.load(user)
    app = build_app(cache)
    for account in app.get_accounts():
        app.remove_account(account)
    tokencache.forget(user)


def end_session_endpoint() -> str | None:
    """The identity provider's sign-out page, from its OpenID configuration."""
    global _end_session_endpoint
    if _end_session_endpoint is None:
        try:
            response = http_client().get(f"{authority()}/v2.0/.well-known/openid-configuration", timeout=10)
            response.raise_for_status()
            _end_session_endpoint = response.json().get("end_session_endpoint") or ""
        except (requests.RequestException, ValueError):
            log.warning("Could not read the identity provider's end_session_endpoint")
            return None
    return _end_session_endpoint or None
