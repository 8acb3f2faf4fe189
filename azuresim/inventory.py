"""ARM's read side and provider registration, as the dashboard's "Import from Azure" and the official SDK
use them: the subscriptions a user can see, the PostgreSQL flexible servers of a subscription or resource
group (paged with `nextLink` as ARM pages them), one server, and Microsoft.DBforPostgreSQL's registration.

    GET  /subscriptions?api-version=2022-12-01
    GET  /subscriptions/{id}/providers/Microsoft.DBforPostgreSQL/flexibleServers?api-version=2024-08-01
    GET  /subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers[/{name}]
    GET  .../flexibleServers/{name}/ltrBackupOperations[/{backupName}]   (azuresim.ltr_backups)
    GET  /subscriptions/{id}/providers/Microsoft.DBforPostgreSQL?api-version=2021-04-01
    POST /subscriptions/{id}/providers/Microsoft.DBforPostgreSQL/register?api-version=2021-04-01

Reads are metered by ARM's read bucket (250, refilled 25/s per subscription and principal); the provider's
registration is a write. Tokens are checked exactly as for ltrPreBackup (arm.Arm).
"""

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import ltr_backups
from .arm_errors import refuse
from .armspec import API_VERSIONS, LOCATIONS, PROVIDER_API_VERSIONS, READ_ACTION, SUBSCRIPTION_API_VERSIONS
from .behaviours import applies
from .state import POSTGRES_NAMESPACE, Server, Subscription, World

if TYPE_CHECKING:
    from .arm import Arm, Call
    from .web import Response

PAGE_SIZE = 50
LTR_PAGE_SIZE = 20


def _visible(sub: Subscription, claims: dict) -> bool:
    upn = str(claims.get("upn", "")).lower()
    return sub.tenant_id == claims["tid"].lower() and ("*" in sub.principals or upn in sub.principals)


def subscription_resource(sub: Subscription) -> dict:
    """A subscription as ARM's list shows it (Microsoft.Resources/subscriptions, api-version 2022-12-01)."""
    return {
        "id": f"/subscriptions/{sub.id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": sub.id,
        "tenantId": sub.tenant_id,
        "displayName": sub.name,
        "state": sub.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def server_resource(sub: Subscription, rg_display: str, server: Server) -> dict:
    """A flexible server as ARM's GET shows it (the fields a client reads, in the 2024-08-01 shape)."""
    behaviour = server.behaviour
    state = behaviour.get("state") if behaviour.get("outcome") == "not_ready" else "Ready"
    return {
        "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
        "systemData": {"createdAt": "2025-01-06T09:30:00.0000000Z"},
        "properties": {
            "administratorLogin": "pgadmin",
            "storage": {"storageSizeGB": 128, "autoGrow": "Disabled", "tier": "P10", "iops": 500},
            "version": "16",
            "minorVersion": "6",
            "fullyQualifiedDomainName": f"{server.name}.postgres.database.azure.com",
            "state": state,
            "availabilityZone": "1",
            "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
            "network": {"publicNetworkAccess": "Enabled"},
            "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
            "replicationRole": "Primary",
            "replicaCapacity": 5,
        },
        "location": sub.locations.get(rg_display.lower(), "westeurope"),
        "tags": {},
        "id": f"/subscriptions/{sub.id}/resourceGroups/{rg_display}/providers/{POSTGRES_NAMESPACE}"
              f"/flexibleServers/{server.name}",
        "name": server.name,
        "type": f"{POSTGRES_NAMESPACE}/flexibleServers",
    }


class Inventory:
    def __init__(self, arm: "Arm", world: World, urls: Callable) -> None:
        self.arm, self.world, self.urls = arm, world, urls
        self.page_size = PAGE_SIZE
        self.ltr_page_size = LTR_PAGE_SIZE  # a knob: LTR backup operations per page
        # Tests set this to make every list call answer 429 (ARM's read bucket empty) with this Retry-After.
        self.throttle_retry_after: int | None = None
        # Tests set this to make a list's nextLink name another host (e.g. "http://127.0.0.1:9999"): a client
        # must not follow it with its bearer token.
        self.next_link_base: str | None = None

    def _read(self, call: "Call", api_versions: tuple, provider_type: str | None = "flexibleServers") -> None:
        """What every read starts with: the token, the read bucket, the api-version."""
        arm = self.arm
        arm.authenticate(call)
        arm.meter(call, self.throttle_retry_after)
        arm.check_api_version(call, api_versions, provider_type)

    # -- subscriptions ----------------------------------------------------------------------
    def list_subscriptions(self, call: "Call") -> "Response":
        self._read(call, SUBSCRIPTION_API_VERSIONS, provider_type=None)
        with self.world.lock:
            items = [subscription_resource(s) for s in self.world.subscriptions.values() if _visible(s, call.claims)]
        return self._page(call, sorted(items, key=lambda i: i["displayName"]))

    # -- servers ----------------------------------------------------------------------------
    def list_servers(self, call: "Call") -> "Response":
        self._read(call, API_VERSIONS)
        sub = self.arm.subscription(call)
        self.arm.authorize(call, READ_ACTION, f"/subscriptions/{sub.id}")
        self.arm.require_registered(sub)
        with self.world.lock:
            items = [server_resource(sub, rg_display, server)
                     for rg_display, servers in sub.resource_groups.values() for server in servers.values()]
        return self._page(call, sorted(items, key=lambda i: i["id"].lower()))

    def list_servers_in_group(self, call: "Call") -> "Response":
        self._read(call, API_VERSIONS)
        sub = self.arm.subscription(call)
        self.arm.require_registered(sub)
        rg_display, servers = self.arm.resource_group(call, sub)
        self.arm.authorize(call, READ_ACTION, f"/subscriptions/{sub.id}/resourceGroups/{rg_display}")
        with self.world.lock:
            items = [server_resource(sub, rg_display, server) for server in servers.values()]
        return self._page(call, sorted(items, key=lambda i: i["name"].lower()))

    def get_server(self, call: "Call") -> "Response":
        self._read(call, API_VERSIONS)
        sub = self.arm.subscription(call)
        self.arm.require_registered(sub)
        rg_display, servers = self.arm.resource_group(call, sub)
        self.arm.authorize(call, READ_ACTION, self.arm.server_scope(call))
        server = servers.get(call.server_name.lower())
        if server is None:
            raise self.arm.not_found(call)
        with self.world.lock:
            resource = server_resource(sub, rg_display, server)
        return self.arm.ok(call, resource)

    # -- LTR backup operations ------------------------------------------------------------
    def _ltr_server(self, call: "Call") -> tuple[str, Server]:
        """The checks of a read of one server's LTR backups: ARM's, in order, then the server's existence."""
        self._read(call, API_VERSIONS)
        sub = self.arm.subscription(call)
        self.arm.require_registered(sub)
        self.arm.resource_group(call, sub)
        call.action = ltr_backups.READ_ACTION
        self.arm.authorize(call, call.action, self.arm.server_scope(call))
        _, servers = sub.resource_groups[call.rg_name.lower()]
        server = servers.get(call.server_name.lower())
        if server is None:
            raise self.arm.not_found(call)
        return self.arm.server_scope(call), server

    def _ltr_answer(self, call: "Call", server: Server, scope: str, body: dict) -> "Response":
        """The server's ``ltr_behaviour`` decides: a clean 200 with ``body`` or one of the pre-check's faults."""
        with self.world.lock:
            server.ltr_calls += 1
            b, n = dict(server.ltr_behaviour), server.ltr_calls
        outcome = b["outcome"] if applies(b, n) else "success"
        return self.arm.behaviours.deliver(self.arm, call, server, scope, outcome, b, json.dumps(body).encode())

    def list_ltr_backups(self, call: "Call") -> "Response":
        scope, server = self._ltr_server(call)
        now = time.time()
        with self.world.lock:
            items = [ltr_backups.resource(scope, op, now) for op in server.ltr_backups]
        items.sort(key=lambda i: (i["properties"]["startTime"], i["name"]), reverse=True)
        return self._ltr_answer(call, server, scope, self._page_body(call, items, self.ltr_page_size))

    def get_ltr_backup(self, call: "Call") -> "Response":
        scope, server = self._ltr_server(call)
        name = call.segments[9].lower()
        with self.world.lock:
            op = next((op for op in server.ltr_backups if op["name"].lower() == name), None)
        if op is None:
            raise refuse("ltr_backup_not_found", server=server.name, backup=call.segments[9])
        return self._ltr_answer(call, server, scope, ltr_backups.resource(scope, op, time.time()))

    # -- the provider's registration --------------------------------------------------------
    def _provider(self, sub: Subscription, state: str | None = None) -> dict:
        registered = POSTGRES_NAMESPACE.lower() not in sub.unregistered_providers
        return {
            "id": f"/subscriptions/{sub.id}/providers/{POSTGRES_NAMESPACE}",
            "namespace": POSTGRES_NAMESPACE,
            "registrationPolicy": "RegistrationRequired",
            "registrationState": state or ("Registered" if registered else "NotRegistered"),
            "resourceTypes": [{
                "resourceType": "flexibleServers",
                "locations": [loc.title() for loc in LOCATIONS],
                "apiVersions": list(reversed(API_VERSIONS)),
                "capabilities": "SupportsTags, SupportsLocation",
            }],
        }

    def get_provider(self, call: "Call") -> "Response":
        self._read(call, PROVIDER_API_VERSIONS, provider_type=None)
        sub = self.arm.subscription(call)
        self.arm.authorize(call, f"{POSTGRES_NAMESPACE}/read", f"/subscriptions/{sub.id}")
        with self.world.lock:
            provider = self._provider(sub)
        return self.arm.ok(call, provider)

    def register_provider(self, call: "Call") -> "Response":
        """Registration starts ('Registering') and, here, is done by the time anyone asks again."""
        self.arm.authenticate(call)
        self.arm.check_api_version(call, PROVIDER_API_VERSIONS, provider_type=None)
        sub = self.arm.subscription(call)
        self.arm.authorize(call, f"{POSTGRES_NAMESPACE}/register/action", f"/subscriptions/{sub.id}")
        self.arm.meter(call)
        with self.world.lock:
            was_registered = POSTGRES_NAMESPACE.lower() not in sub.unregistered_providers
            sub.unregistered_providers.discard(POSTGRES_NAMESPACE.lower())
            provider = self._provider(sub, None if was_registered else "Registering")
        return self.arm.ok(call, provider)

    # -- paging -----------------------------------------------------------------------------
    def _page(self, call: "Call", items: list) -> "Response":
        return self.arm.ok(call, self._page_body(call, items, self.page_size))

    def _page_body(self, call: "Call", items: list, size: int) -> dict:
        token = call.req.query.get("$skiptoken", "0")
        skip = int(token) if token.isdigit() else 0
        body: dict = {"value": items[skip: skip + size]}
        if skip + size < len(items):
            https_url, _ = self.urls()
            query = f"api-version={call.req.query['api-version']}&$skiptoken={skip + size}"
            body["nextLink"] = f"{self.next_link_base or https_url}{call.req.path}?{query}"
        return body
