"""The simulated world: tenants, users, the app registration, subscriptions and their servers
(from a scenario file), plus everything that changes at run time (codes, refresh tokens,
revocations, throttle buckets, call counters).

One lock guards it all: requests are short and the simulator serves a handful of clients.
"""

import copy
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from .ltr_backups import expand

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
POSTGRES_NAMESPACE = "Microsoft.DBforPostgreSQL"

OUTCOMES = frozenset(
    {
        "success",
        "forbidden",
        "not_ready",
        "throttled",
        "internal_error",
        "bad_gateway",
        "unavailable",
        "html",
        "empty",
        "invalid_json",
        "huge",
        "trickle",
        "reset",
        "stall_headers",
        "stall_body",
        "payload",
    }
)
BEHAVIOUR_DEFAULTS = {
    "outcome": "success",
    "containers": 1,
    "state": "Stopped",  # what not_ready reports
    "latency_ms": 0,
    "fail_times": None,  # the outcome applies to the first N calls only
    "on_calls": None,  # ... or only to these 1-based call numbers
    "after_calls": None,  # ... or only after the first N calls (which succeed): a server that stops being ready
    "retry_after": None,  # seconds; throttled/unavailable default to 10 when neither is set
    "retry_after_ms": None,
    "huge_bytes": 20 * 1024 * 1024,
    "trickle_interval": 1.0,
    "stall": 30.0,
    "body": None,  # for payload: a JSON value, or a str sent verbatim
    "status": 200,  # for payload: the HTTP status it is sent with (an ARM error body with 400, say)
}


def is_guid(value: str | None) -> bool:
    return bool(GUID_RE.match(value or ""))


def secret_hash(value: str) -> str:
    # Codes and refresh tokens are looked up by hash so the raw secrets are never kept.
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_behaviour(behaviour: dict) -> dict:
    """Check a server behaviour dict and fill in defaults; raise ValueError on nonsense."""
    unknown = set(behaviour) - set(BEHAVIOUR_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown behaviour keys: {sorted(unknown)}")
    result = {**BEHAVIOUR_DEFAULTS, **behaviour}
    if result["outcome"] not in OUTCOMES:
        raise ValueError(f"unknown outcome {result['outcome']!r}; known: {sorted(OUTCOMES)}")
    for key in ("containers", "latency_ms", "huge_bytes"):
        if not isinstance(result[key], int) or result[key] < 0:
            raise ValueError(f"{key} must be a non-negative int")
    for key in ("fail_times", "after_calls"):
        if result[key] is not None and not isinstance(result[key], int):
            raise ValueError(f"{key} must be an int")
    if result["on_calls"] is not None:
        result["on_calls"] = sorted({int(n) for n in result["on_calls"]})
    return result


@dataclass
class User:
    oid: str
    upn: str
    name: str
    tenant_id: str
    mfa_required: bool = False
    consent_required: bool = False
    refresh_revoked: bool = False  # every refresh grant fails until an interactive sign-in
    refresh_revoked_at: float = 0.0  # refresh tokens issued before this epoch are revoked for good
    # App roles assigned to the user in the app's enterprise application: the ID token's `roles` claim.
    app_roles: list = field(default_factory=list)


@dataclass
class Tenant:
    id: str
    name: str
    users: list = field(default_factory=list)

    @property
    def domains(self) -> set[str]:
        return {u.upn.split("@", 1)[1].lower() for u in self.users}


@dataclass
class App:
    client_id: str
    secret: str
    name: str = "LTR dashboard"
    multi_tenant: bool = True
    home_tenant: str | None = None
    redirect_uris: list | None = None  # None: any loopback http redirect is accepted


@dataclass
class Server:
    name: str
    behaviour: dict
    deny: set = field(default_factory=set)  # lower-cased UPNs refused by RBAC on this server
    calls: int = 0
    ltr_backups: list = field(default_factory=list)  # its LTR backup operations (ltr_backups.expand)
    ltr_behaviour: dict = field(default_factory=lambda: normalise_behaviour({}))  # how their reads answer
    ltr_calls: int = 0


@dataclass
class Subscription:
    id: str
    name: str
    tenant_id: str
    principals: set  # lower-cased UPNs holding the role, or {"*"}
    unregistered_providers: set  # lower-cased namespaces
    resource_groups: dict  # lower name -> (display name, {lower server name: Server})
    locations: dict = field(default_factory=dict)  # lower resource group name -> Azure region


class TokenBucket:
    """One of ARM's per (subscription, principal) buckets, for writes or reads: ``capacity`` tokens,
    ``rate`` per second."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens, self.stamp = float(capacity), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def peek(self) -> int:
        self._refill()
        return int(self.tokens)

    def take(self) -> tuple[bool, int, int]:
        """Return (allowed, remaining, seconds until a token is available)."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens), 0
        wait = math.ceil((1 - self.tokens) / self.rate) if self.rate > 0 else 3600
        return False, 0, max(1, wait)


class Stats:
    """A snapshot of the simulator's counters."""

    def __init__(self, token_requests: Counter, arm_calls: Counter, throttled: int) -> None:
        self.token_requests = dict(token_requests)  # (upn or None, grant_type) -> n
        self.arm_calls = dict(arm_calls)  # (subscription, resource group, server), lower-cased -> n
        self.throttled = throttled  # 429s answered, from the bucket or a throttled server

    def token_calls(self, upn: str | None = None, grant_type: str | None = None) -> int:
        return sum(
            n
            for (u, g), n in self.token_requests.items()
            if (upn is None or u == upn.lower()) and (grant_type is None or g == grant_type)
        )

    def __repr__(self) -> str:
        return f"Stats(token_requests={self.token_requests}, arm_calls={self.arm_calls}, throttled={self.throttled})"


class World:
    """Scenario data plus run-time state. Public methods take the lock; ``lock`` is exposed so the
    request handlers can make several reads and writes atomically."""

    def __init__(self, scenario: dict) -> None:
        self.lock = threading.RLock()
        self.loaded_at = time.time()  # "now" for the scenario's relative times (LTR backups' starts)
        self.tenants = {}
        self.users = {}  # lower upn -> User
        self.apps = {}
        self.subscriptions = {}
        self._load(copy.deepcopy(scenario))
        self.codes = {}  # hash -> dict
        self.refresh_tokens = {}  # hash -> dict
        self.sso = {}  # browser session id -> lower upn
        self.issued_utis = {}  # oid -> set of access-token ids, so CAE can revoke exactly those
        self.revoked_utis = {}  # uti -> revocation epoch
        self.pending_challenges = {}  # oid -> epoch of challenge_next
        self.buckets = {}
        self._token_requests = Counter()
        self._arm_calls = Counter()
        self._throttled = 0

    # -- scenario ---------------------------------------------------------------------------
    def _load(self, sc: dict) -> None:
        self._load_tenants(sc.get("tenants", []))
        for a in sc.get("apps", []):
            app = App(
                a["client_id"].lower(),
                a["client_secret"],
                a.get("name", "LTR dashboard"),
                a.get("multi_tenant", True),
                a.get("home_tenant"),
                a.get("redirect_uris"),
            )
            self.apps[app.client_id] = app
        for s in sc.get("subscriptions", []):
            self._load_subscription(s)
        throttle = sc.get("throttle", {})
        self.throttle_capacity = throttle.get("capacity", 200)
        self.throttle_rate = throttle.get("refill_per_second", 10)
        # ARM's read bucket: 250 refilled at 25/s per subscription and principal.
        self.read_capacity = throttle.get("read_capacity", 250)
        self.read_rate = throttle.get("read_refill_per_second", 25)
        tokens = sc.get("tokens", {})
        self.access_lifetime = tokens.get("access_token_lifetime", 3600)
        self.refresh_lifetime = tokens.get("refresh_token_lifetime", 86400)

    def _load_tenants(self, tenants: list[dict]) -> None:
        for t in tenants:
            tenant = Tenant(t["id"].lower(), t.get("name", t["id"]))
            self.tenants[tenant.id] = tenant
            for u in t.get("users", []):
                user = User(
                    u["oid"].lower(),
                    u["upn"],
                    u.get("name", u["upn"]),
                    tenant.id,
                    bool(u.get("mfa_required")),
                    bool(u.get("consent_required")),
                    bool(u.get("refresh_revoked")),
                    app_roles=[str(r) for r in u.get("app_roles", [])],
                )
                tenant.users.append(user)
                self.users[user.upn.lower()] = user

    def _load_subscription(self, s: dict) -> None:
        sub = Subscription(
            s["id"].lower(),
            s.get("name", s["id"]),
            s["tenant"].lower(),
            {p.lower() for p in s.get("principals", ["*"])},
            {p.lower() for p in s.get("unregistered_providers", [])},
            {},
        )
        self.subscriptions[sub.id] = sub
        for rg in s.get("resource_groups", []):
            servers = {
                srv["name"].lower(): Server(
                    srv["name"],
                    normalise_behaviour(srv.get("behaviour", {})),
                    {d.lower() for d in srv.get("deny", [])},
                    ltr_backups=expand(srv.get("ltr_backups", []), self.loaded_at),
                    ltr_behaviour=normalise_behaviour(srv.get("ltr_behaviour", {})),
                )
                for srv in rg.get("servers", [])
            }
            sub.resource_groups[rg["name"].lower()] = (rg["name"], servers)
            sub.locations[rg["name"].lower()] = rg.get("location", "westeurope")

    def user(self, upn: str) -> User:
        user = self.users.get((upn or "").lower())
        if user is None:
            raise KeyError(f"unknown user {upn!r}")
        return user

    def user_by_oid(self, oid: str | None) -> User | None:
        return next((u for u in self.users.values() if u.oid == (oid or "").lower()), None)

    def resolve_tenant(self, segment: str | None) -> tuple[str | None, Tenant | None]:
        """Map an authority's tenant segment to ('multi', None), ('tenant', Tenant) or (None, None)."""
        seg = (segment or "").lower()
        if seg in ("organizations", "common"):
            return "multi", None
        if seg in self.tenants:
            return "tenant", self.tenants[seg]
        for tenant in self.tenants.values():
            if seg in tenant.domains:
                return "tenant", tenant
        return None, None

    # -- servers ----------------------------------------------------------------------------
    def find_server(self, subscription_id: str, resource_group: str, server_name: str) -> Server | None:
        sub = self.subscriptions.get(subscription_id.lower())
        rg = sub and sub.resource_groups.get(resource_group.lower())
        return rg and rg[1].get(server_name.lower())

    def set_behaviour(self, subscription_id: str, resource_group: str, server_name: str,
                      deny: list[str] | None = None, **behaviour) -> Server:
        normalised = normalise_behaviour(behaviour)
        with self.lock:
            sub = self.subscriptions[subscription_id.lower()]
            _, servers = sub.resource_groups.setdefault(resource_group.lower(), (resource_group, {}))
            server = servers.setdefault(server_name.lower(), Server(server_name, normalised))
            server.behaviour = normalised
            if deny is not None:
                server.deny = {d.lower() for d in deny}
            return server

    def set_ltr_backups(self, subscription_id: str, resource_group: str, server_name: str,
                        backups: list[dict] | None = None, behaviour: dict | None = None) -> None:
        """Replace a server's LTR backup operations (times relative to now) and/or how their reads answer."""
        with self.lock:
            server = self.find_server(subscription_id, resource_group, server_name)
            if backups is not None:
                server.ltr_backups = expand(backups, time.time())
            if behaviour is not None:
                server.ltr_behaviour, server.ltr_calls = normalise_behaviour(behaviour), 0

    def remove_ltr_backup(self, subscription_id: str, resource_group: str, server_name: str, name: str) -> None:
        """The operation disappears from Azure: neither listed nor found any more."""
        with self.lock:
            server = self.find_server(subscription_id, resource_group, server_name)
            server.ltr_backups = [op for op in server.ltr_backups if op["name"].lower() != name.lower()]

    def remove_server(self, subscription_id: str, resource_group: str, server_name: str) -> None:
        with self.lock:
            sub = self.subscriptions[subscription_id.lower()]
            sub.resource_groups[resource_group.lower()][1].pop(server_name.lower(), None)

    def reset_calls(self) -> None:
        with self.lock:
            for sub in self.subscriptions.values():
                for _, servers in sub.resource_groups.values():
                    for server in servers.values():
                        server.calls = server.ltr_calls = 0
            self._arm_calls.clear()

    def bucket(self, scope_id: str, oid: str, kind: str = "write") -> TokenBucket:
        """The ``kind`` ("write" or "read") bucket of a subscription (or, listing subscriptions, a tenant)
        and principal."""
        with self.lock:
            key = (scope_id.lower(), oid, kind)
            if key not in self.buckets:
                if kind == "write":
                    self.buckets[key] = TokenBucket(self.throttle_capacity, self.throttle_rate)
                else:
                    self.buckets[key] = TokenBucket(self.read_capacity, self.read_rate)
            return self.buckets[key]

    def set_throttle(self, capacity: float | None = None, refill_per_second: float | None = None,
                     read_capacity: float | None = None, read_refill_per_second: float | None = None) -> None:
        with self.lock:
            if capacity is not None:
                self.throttle_capacity = capacity
            if refill_per_second is not None:
                self.throttle_rate = refill_per_second
            if read_capacity is not None:
                self.read_capacity = read_capacity
            if read_refill_per_second is not None:
                self.read_rate = read_refill_per_second
            self.buckets.clear()  # new settings start with full buckets

    # -- identity run-time state ------------------------------------------------------------
    def revoke_refresh_tokens(self, upn: str) -> None:
        with self.lock:
            self.user(upn).refresh_revoked_at = time.time()

    def set_user_flags(self, upn: str, mfa_required: bool | None = None, consent_required: bool | None = None,
                       refresh_revoked: bool | None = None) -> None:
        with self.lock:
            user = self.user(upn)
            if mfa_required is not None:
                user.mfa_required = bool(mfa_required)
            if consent_required is not None:
                user.consent_required = bool(consent_required)
            if refresh_revoked is not None:
                user.refresh_revoked = bool(refresh_revoked)

    def revoke_sessions(self, upn: str) -> None:
        with self.lock:
            user = self.user(upn)
            now = int(time.time())
            for uti in self.issued_utis.pop(user.oid, set()):
                self.revoked_utis[uti] = now

    def challenge_next(self, upn: str) -> None:
        with self.lock:
            self.pending_challenges[self.user(upn).oid] = int(time.time())

    def signed_in_interactively(self, user: User) -> None:
        # A fresh interactive sign-in performs MFA and consent, as the real prompt would.
        with self.lock:
            user.mfa_required = False
            user.consent_required = False
            user.refresh_revoked = False

    def record_uti(self, oid: str, uti: str) -> None:
        with self.lock:
            self.issued_utis.setdefault(oid, set()).add(uti)

    # -- counters ---------------------------------------------------------------------------
    def count_token_request(self, upn: str | None, grant_type: str) -> None:
        with self.lock:
            self._token_requests[((upn or "").lower() or None, grant_type)] += 1

    def count_arm_call(self, key: tuple[str, ...]) -> None:
        with self.lock:
            self._arm_calls[tuple(k.lower() for k in key)] += 1

    def count_throttled(self) -> None:
        with self.lock:
            self._throttled += 1

    def stats(self) -> Stats:
        with self.lock:
            return Stats(self._token_requests, self._arm_calls, self._throttled)


def load_scenario(scenario: dict | str) -> dict:
    """Accept a dict or a path to a JSON file."""
    if isinstance(scenario, dict):
        return scenario
    with open(scenario, encoding="utf-8") as f:
        return json.load(f)


def new_guid() -> str:
    return str(uuid.uuid4())
