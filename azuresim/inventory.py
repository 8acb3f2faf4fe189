"""ARM's read side that the dashboard's "Import from Azure" uses: the subscriptions a user can see and
the PostgreSQL flexible servers in one of them, paged with `nextLink` as ARM pages them.

    GET /subscriptions?api-version=2022-12-01
    GET /subscriptions/{id}/providers/Microsoft.DBforPostgreSQL/flexibleServers?api-version=2024-08-01

Reads are not metered by the write bucket. Tokens are checked exactly as for ltrPreBackup (arm.Arm).
"""

import json
from urllib.parse import unquote

from .arm import API_VERSIONS, JSON_TYPE
from .state import POSTGRES_NAMESPACE, is_guid, new_guid  # noqa: I001
from .web import Response

SUBSCRIPTION_API_VERSIONS = ("2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01")
PAGE_SIZE = 50


def _visible(sub, claims) -> bool:
    upn = str(claims.get("upn", "")).lower()
    return sub.tenant_id == claims["tid"].lower() and ("*" in sub.principals or upn in sub.principals)


class Inventory:
    def __init__(self, arm, world, urls):
        self.arm, self.world, self.urls = arm, world, urls
        self.page_size = PAGE_SIZE
        # Tests set this to make every list call answer 429 with this Retry-After (seconds).
        self.throttle_retry_after = None

    @staticmethod
    def serves(req) -> bool:
        segments = [s.lower() for s in req.path.rstrip("/").split("/")[1:]]
        return req.method == "GET" and (
            segments == ["subscriptions"]
            or (len(segments) == 5 and segments[0] == "subscriptions" and segments[2:] == [
                "providers", POSTGRES_NAMESPACE.lower(), "flexibleservers"])
        )

    def handle(self, req):
        ctx = {"request_id": new_guid(),
               "correlation_id": req.headers.get("x-ms-correlation-request-id") or new_guid()}
        segments = [unquote(s) for s in req.path.rstrip("/").split("/")[1:]]
        sub_id = segments[1] if len(segments) > 1 else None
        sub = self.world.subscriptions.get(sub_id.lower()) if sub_id else None
        claims, failure = self.arm._authenticate(req, ctx, sub)
        if failure:
            return failure
        if self.throttle_retry_after is not None:
            return self.arm._error(ctx, 429, "TooManyRequests", "Too many read requests; retry later.",
                                   headers=[("Retry-After", str(self.throttle_retry_after))])
        api_version = req.query.get("api-version", "")
        allowed = SUBSCRIPTION_API_VERSIONS if sub_id is None else API_VERSIONS
        if api_version not in allowed:
            return self.arm._error(ctx, 400, "InvalidApiVersionParameter" if api_version else
                                   "MissingApiVersionParameter",
                                   f"The api-version '{api_version}' is invalid. The supported versions are "
                                   f"'{','.join(allowed)}'.")
        skip = int(req.query.get("$skiptoken", "0") or 0) if req.query.get("$skiptoken", "0").isdigit() else 0
        if sub_id is None:
            with self.world.lock:
                items = [
                    {"id": f"/subscriptions/{s.id}", "subscriptionId": s.id, "tenantId": s.tenant_id,
                     "displayName": s.name, "state": "Enabled"}
                    for s in self.world.subscriptions.values() if _visible(s, claims)
                ]
            return self._page(ctx, req, sorted(items, key=lambda i: i["displayName"]), skip)
        if not is_guid(sub_id):
            return self.arm._error(ctx, 400, "InvalidSubscriptionId",
                                   f"The provided subscription identifier '{sub_id}' is malformed or invalid.")
        if sub is None:
            return self.arm._error(ctx, 404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found.")
        if not _visible(sub, claims):
            return self.arm._error(
                ctx, 403, "AuthorizationFailed",
                f"The client '{claims.get('upn', '')}' with object id '{claims['oid']}' does not have authorization "
                f"to perform action '{POSTGRES_NAMESPACE}/flexibleServers/read' over scope '/subscriptions/{sub.id}' "
                "or the scope is invalid. If access was recently granted, please refresh your credentials.")
        if POSTGRES_NAMESPACE.lower() in sub.unregistered_providers:
            return self.arm._error(
                ctx, 409, "MissingSubscriptionRegistration",
                f"The subscription is not registered to use namespace '{POSTGRES_NAMESPACE}'. See "
                "https://aka.ms/rps-not-found for how to register subscriptions.", target=POSTGRES_NAMESPACE)
        with self.world.lock:
            items = []
            for rg_display, servers in sub.resource_groups.values():
                for server in servers.values():
                    state = server.behaviour.get("state") if server.behaviour.get("outcome") == "not_ready" else "Ready"
                    items.append({
                        "id": f"/subscriptions/{sub.id}/resourceGroups/{rg_display}/providers/{POSTGRES_NAMESPACE}"
                              f"/flexibleServers/{server.name}",
                        "name": server.name,
                        "type": f"{POSTGRES_NAMESPACE}/flexibleServers",
                        "location": "westeurope",
                        "properties": {"state": state, "version": "16",
                                       "fullyQualifiedDomainName": f"{server.name}.postgres.database.azure.com"},
                    })
        return self._page(ctx, req, sorted(items, key=lambda i: i["id"].lower()), skip)

    def _page(self, ctx, req, items, skip):
        body = {"value": items[skip: skip + self.page_size]}
        if skip + self.page_size < len(items):
            https_url, _ = self.urls()
            query = f"api-version={req.query['api-version']}&$skiptoken={skip + self.page_size}"
            body["nextLink"] = f"{https_url}{req.path}?{query}"
        return self.arm._finish(ctx, Response(200, json.dumps(body), JSON_TYPE))
