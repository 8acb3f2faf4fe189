"""Fake Azure Resource Manager for what the dashboard (and the official SDK) call: the PostgreSQL flexible
server ``ltrPreBackup`` POST, the server reads (one server, by resource group, by subscription), the
subscription list and the provider's registration.

A request is matched to a route, then checked in ARM's order (token, api-version, subscription, provider
registration, resource group, RBAC, resource, body, throttling) and answered; ``ltrPreBackup`` is then
answered by the server's scripted behaviour (behaviours.py), which may be anything from a clean 200 to a
reset connection. Every refusal is a row of arm_errors.ERRORS."""

import base64
import datetime
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .arm_errors import ArmError, refuse
from .armspec import ACTION, API_VERSIONS, BUCKET_HEADERS, JSON_TYPE, LOCATIONS
from .behaviours import Behaviours
from .inventory import Inventory
from .state import POSTGRES_NAMESPACE, Server, Subscription, TokenBucket, World, is_guid, new_guid
from .tokens import ARM_AUDIENCES, InvalidToken, TokenService
from .web import Request, Response

RG_CHARS = set("-_.()")


def _dotnet_time(epoch: float) -> str:
    # ARM prints times the .NET way: 1/8/2026 3:04:05 PM
    d = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    hour, half = d.hour % 12 or 12, "AM" if d.hour < 12 else "PM"
    return f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02}:{d.second:02} {half}"


@dataclass
class Call:
    """One ARM request on its way through the checks: what is known about it so far."""

    req: Request
    segments: list[str]
    request_id: str
    correlation_id: str
    kind: str = "write"  # which bucket meters it: "read" or "write"
    scope: str = "subscription"  # whose bucket: the subscription's or (listing subscriptions) the tenant's
    sub: Subscription | None = None
    claims: dict | None = None
    action: str = ACTION  # the RBAC action a refusal names
    bucket: TokenBucket | None = None
    remaining: int | None = None

    @property
    def sub_id(self) -> str:
        return self.segments[1]

    @property
    def rg_name(self) -> str:
        return self.segments[3]

    @property
    def server_name(self) -> str:
        return self.segments[7]

    @property
    def upn(self) -> str:
        return str(self.claims.get("upn", "")).lower()


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple  # lower-cased literal segments; None matches any one segment
    handler: str  # the name of a method taking the Call: on Arm, or on its Inventory when ``read_side``
    kind: str  # "read" or "write": which bucket
    read_side: bool = True


_NS = POSTGRES_NAMESPACE.lower()
_RG = ("subscriptions", None, "resourcegroups", None, "providers", _NS, "flexibleservers")
ROUTES = (
    Route("GET", ("subscriptions",), "list_subscriptions", "read"),
    Route("GET", ("subscriptions", None, "providers", _NS), "get_provider", "read"),
    Route("POST", ("subscriptions", None, "providers", _NS, "register"), "register_provider", "write"),
    Route("GET", ("subscriptions", None, "providers", _NS, "flexibleservers"), "list_servers", "read"),
    Route("GET", _RG, "list_servers_in_group", "read"),
    Route("GET", (*_RG, None), "get_server", "read"),
    Route("POST", (*_RG, None, "ltrprebackup"), "ltr_pre_backup", "write", read_side=False),
    Route("GET", (*_RG, None, "ltrbackupoperations"), "list_ltr_backups", "read"),
    Route("GET", (*_RG, None, "ltrbackupoperations", None), "get_ltr_backup", "read"),
)


def _matches(pattern: tuple, segments: list[str]) -> bool:
    return len(pattern) == len(segments) and all(
        lit is None or seg.lower() == lit for seg, lit in zip(segments, pattern, strict=True)
    )


class Arm:
    def __init__(self, world: World, tokens: TokenService, urls: Callable, stopping: threading.Event) -> None:
        self.world, self.tokens, self.urls, self.stopping = world, tokens, urls, stopping
        self.behaviours = Behaviours(stopping)
        self.inventory = Inventory(self, world, urls)

    # -- request ----------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        segments = [unquote(s) for s in req.path.rstrip("/").split("/")[1:]]
        call = Call(req, segments, new_guid(), req.headers.get("x-ms-correlation-request-id") or new_guid())
        try:
            route = self._route(call)
            call.kind, call.scope = route.kind, "tenant" if len(segments) == 1 else "subscription"
            call.sub = self.world.subscriptions.get(segments[1].lower()) if len(segments) > 1 else None
            return getattr(self.inventory if route.read_side else self, route.handler)(call)
        except ArmError as err:
            return self.error(call, err)

    @staticmethod
    def _route(call: Call) -> Route:
        matching = [r for r in ROUTES if _matches(r.pattern, call.segments)]
        if not matching:
            raise refuse("path_not_served", path=call.req.path)
        for route in matching:
            if route.method == call.req.method:
                return route
        raise refuse("method_not_allowed", method=call.req.method)

    def ltr_pre_backup(self, call: Call) -> Response:
        self.authenticate(call)
        self.check_api_version(call, API_VERSIONS)
        sub = self.subscription(call)
        self.require_registered(sub)
        _, servers = self.resource_group(call, sub)
        server = servers.get(call.server_name.lower())
        scope = self.server_scope(call)
        self.authorize(call, ACTION, scope, denied=server is not None and call.upn in server.deny)
        if server is None:
            raise self.not_found(call)
        self.world.count_arm_call((sub.id, call.rg_name, server.name))
        self.behaviours.check_body(call.req.body)
        self.meter(call)
        return self.behaviours.answer(self, call, server, scope)

    # -- the checks, in ARM's order ---------------------------------------------------------
    def authenticate(self, call: Call) -> None:
        """Check the bearer token; set ``call.claims`` and the caller's bucket."""
        header = call.req.headers.get("Authorization")
        if not header:
            raise refuse("no_authorization")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise refuse("bad_authorization")
        try:
            claims = self.tokens.verify(token.strip())
        except InvalidToken:
            raise refuse("invalid_token") from None
        self._check_claims(claims)
        call.claims = claims
        key = claims["tid"] if call.scope == "tenant" else call.sub_id
        call.bucket = self.world.bucket(key, claims["oid"], call.kind)

    def _check_claims(self, claims: dict) -> None:
        if claims["aud"] not in ARM_AUDIENCES:
            raise refuse("wrong_audience", audience=claims["aud"], allowed=",".join(f"'{a}'" for a in ARM_AUDIENCES))
        now = time.time()
        if claims["exp"] <= now:
            raise refuse("expired_token", expiry=_dotnet_time(claims["exp"]), now=_dotnet_time(now))
        if claims.get("nbf", 0) > now + 300:
            raise refuse("token_not_yet_valid")
        nbf = self._cae_revocation(claims)
        if nbf is not None:
            raise self._cae_challenge(claims, nbf)

    def _cae_revocation(self, claims: dict) -> int | None:
        """Return the nbf a Continuous Access Evaluation challenge must demand, or None."""
        with self.world.lock:
            armed = self.world.pending_challenges.pop(claims["oid"], None)
            revoked = self.world.revoked_utis.get(claims.get("uti"))
        return armed if armed is not None else revoked

    def _cae_challenge(self, claims: dict, nbf: int) -> ArmError:
        https_url, _ = self.urls()
        demand = json.dumps({"access_token": {"nbf": {"essential": True, "value": str(nbf)}}})
        challenge = (
            f'Bearer authorization_uri="{https_url}/{claims["tid"]}/oauth2/authorize", '
            f'error="insufficient_claims", claims="{base64.b64encode(demand.encode()).decode()}"'
        )
        return refuse("cae_challenge", headers=[("WWW-Authenticate", challenge)])

    def check_api_version(self, call: Call, supported: tuple, provider_type: str | None = "flexibleServers") -> None:
        """ARM refuses an api-version its own types do not know; for a resource provider's type it
        finds no provider registered for that version (``provider_type`` None: an ARM type)."""
        api_version = call.req.query.get("api-version")
        if not api_version:
            raise refuse("missing_api_version")
        if api_version in supported:
            return
        if provider_type is None:
            raise refuse("invalid_api_version", api_version=api_version, supported=",".join(supported))
        raise refuse("no_registered_provider", location=self.location(call), api_version=api_version,
                     type=provider_type, supported=", ".join(reversed(supported)), locations=", ".join(LOCATIONS))

    def location(self, call: Call) -> str:
        """Where the request's resource group is (the subscription's first one's, if it names none)."""
        sub = call.sub
        if sub is None:
            return "westeurope"
        if len(call.segments) > 3 and call.rg_name.lower() in sub.locations:
            return sub.locations[call.rg_name.lower()]
        return next(iter(sub.locations.values()), "westeurope")

    def subscription(self, call: Call) -> Subscription:
        """The subscription, once its id, its existence and the token's tenant check out."""
        if not is_guid(call.sub_id):
            raise refuse("invalid_subscription", subscription=call.sub_id)
        sub = call.sub
        if sub is None:
            raise refuse("subscription_not_found", subscription=call.sub_id)
        if call.claims["tid"].lower() != sub.tenant_id:
            https_url, _ = self.urls()
            raise refuse("wrong_tenant", token_tenant=call.claims["tid"], tenant=sub.tenant_id,
                         authority=f"{https_url}/{sub.tenant_id}")
        return sub

    @staticmethod
    def require_registered(sub: Subscription) -> None:
        if POSTGRES_NAMESPACE.lower() in sub.unregistered_providers:
            err = refuse("provider_not_registered", namespace=POSTGRES_NAMESPACE, target=POSTGRES_NAMESPACE)
            err.details = [{"code": err.code, "target": POSTGRES_NAMESPACE, "message": err.message}]
            raise err

    def resource_group(self, call: Call, sub: Subscription) -> tuple[str, dict[str, Server]]:
        name = call.rg_name
        if not 1 <= len(name) <= 90:
            raise refuse("rg_name_length", name=name)
        invalid = "".join(sorted({c for c in name if not (c.isalnum() or c in RG_CHARS)}))
        if invalid:
            raise refuse("rg_name_chars", name=name, invalid=invalid)
        if name.endswith("."):
            raise refuse("rg_name_period", name=name)
        rg = sub.resource_groups.get(name.lower())
        if rg is None:
            raise refuse("rg_not_found", rg=name)
        return rg

    def authorize(self, call: Call, action: str, scope: str, *, denied: bool = False) -> None:
        """RBAC: the subscription's principals hold the role, unless this resource denies the user."""
        sub, claims = call.sub, call.claims
        allowed = ("*" in sub.principals and self.world.user_by_oid(claims["oid"]) is not None) or (
            call.upn in sub.principals
        )
        if not allowed or denied:
            raise refuse("authorization_failed", client=claims.get("upn", claims["oid"]), oid=claims["oid"],
                         action=action, scope=scope)

    @staticmethod
    def server_scope(call: Call) -> str:
        return (f"/subscriptions/{call.sub_id}/resourceGroups/{call.rg_name}/providers/{POSTGRES_NAMESPACE}"
                f"/flexibleServers/{call.server_name}")

    @staticmethod
    def not_found(call: Call) -> ArmError:
        return refuse("resource_not_found", namespace=POSTGRES_NAMESPACE, server=call.server_name, rg=call.rg_name)

    def meter(self, call: Call, forced_wait: int | None = None) -> None:
        """Take a token from the caller's bucket (``forced_wait``: answer as if it were empty)."""
        with self.world.lock:
            ok, remaining, wait = (False, 0, forced_wait) if forced_wait is not None else call.bucket.take()
        call.remaining = remaining
        if ok:
            return
        if call.kind == "write":
            self.world.count_throttled()
        scope_id = call.claims["tid"] if call.scope == "tenant" else call.sub_id
        raise refuse("subscription_throttled", kind=call.kind, scope=call.scope, scope_id=scope_id,
                     oid=call.claims["oid"], wait=wait, headers=[("Retry-After", str(wait))])

    # -- answers ----------------------------------------------------------------------------
    def finish(self, call: Call, response: Response) -> Response:
        """Add the headers every ARM answer carries (and no product name: real ARM sends none)."""
        response.server_header = False
        response.header("x-ms-request-id", call.request_id)
        response.header("x-ms-correlation-request-id", call.correlation_id)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        response.header("x-ms-routing-request-id", f"LOCALSIM:{stamp}:{call.request_id}")
        for name, value in (("Cache-Control", "no-cache"), ("Pragma", "no-cache"), ("Expires", "-1"),
                            ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
                            ("X-Content-Type-Options", "nosniff")):
            response.header(name, value)
        self._ratelimit_headers(call, response)
        return response

    def _ratelimit_headers(self, call: Call, response: Response) -> None:
        remaining = call.remaining
        if remaining is None and call.bucket is not None:  # known only once the caller is authenticated
            with self.world.lock:
                remaining = call.bucket.peek()
        if remaining is None:
            return
        for name in BUCKET_HEADERS[(call.kind, call.scope)]:
            response.header(name, remaining)

    def ok(self, call: Call, body: Any, content_type: str = JSON_TYPE, status: int = 200) -> Response:
        raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.finish(call, Response(status, raw, content_type))

    def error(self, call: Call, err: ArmError) -> Response:
        headers = list(err.headers)
        if err.status == 401 and not any(name == "WWW-Authenticate" for name, _ in headers):
            headers.append(("WWW-Authenticate", self._challenge(call, err.message)))
        response = Response(err.status, json.dumps(err.body()), JSON_TYPE, headers)
        response.header("x-ms-error-code", err.code)
        return self.finish(call, response)

    def _challenge(self, call: Call, message: str) -> str:
        https_url, _ = self.urls()
        tenant_id = call.sub.tenant_id if call.sub else "common"
        first = message.split(". ")[0].rstrip(".")
        return (f'Bearer authorization_uri="{https_url}/{tenant_id}", error="invalid_token", '
                f'error_description="{first}."')
