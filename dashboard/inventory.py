"""Reading the fleet from Azure for "Import from Azure": the user's subscriptions and the PostgreSQL
flexible servers in each, with the user's own delegated token, following ARM's `nextLink` paging.

Calls go through the ARM client's shared session (connection pool, retries); `nextLink` is followed only
while it stays on the configured ARM endpoint, so the user's token never goes anywhere else.
"""

from dataclasses import dataclass

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from checks.arm import retry_budget, session

SUBSCRIPTIONS_API_VERSION = "2022-12-01"
MAX_PAGES = 100


class InventoryError(Exception):
    def __init__(self, message: str, code: str = "", request_id: str = ""):
        super().__init__(message)
        self.message, self.code, self.request_id = message, code, request_id


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str


@dataclass(frozen=True)
class FoundServer:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    state: str


@sensitive_variables("access_token")
def _get_all(access_token: str, url: str, params: dict | None) -> list[dict]:
    items: list[dict] = []
    for _ in range(MAX_PAGES):
        try:
            # A page request runs inside a web request: retries get a short budget, and a long
            # Retry-After is reported rather than slept through.
            with retry_budget(settings.ARM_MAX_RETRY_WAIT):
                response = session().get(
                    url, params=params, timeout=(settings.ARM_CONNECT_TIMEOUT, settings.ARM_READ_TIMEOUT),
                    headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            raise InventoryError(f"Azure Resource Manager could not be reached ({type(exc).__name__}).") from None
        request_id = response.headers.get("x-ms-request-id", "")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200:
            error = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), dict) else {}
            raise InventoryError(
                str(error.get("message") or f"Azure answered HTTP {response.status_code}.")[:1000],
                str(error.get("code") or response.headers.get("x-ms-error-code", ""))[:200],
                request_id,
            )
        if not isinstance(data, dict) or not isinstance(data.get("value", []), list):
            raise InventoryError("Azure's answer was not the list the API documents.", request_id=request_id)
        items.extend(item for item in data.get("value", []) if isinstance(item, dict))
        next_link = data.get("nextLink")
        if not next_link:
            return items
        if not isinstance(next_link, str) or not next_link.startswith(settings.AZURE_ARM_ENDPOINT + "/"):
            raise InventoryError("Azure's next page pointed outside Azure Resource Manager; it was not followed.",
                                 request_id=request_id)
        url, params = next_link, None
    raise InventoryError(f"More than {MAX_PAGES} pages; the list was cut.")


def subscriptions(access_token: str, tenant_id: str) -> list[Subscription]:
    """The enabled subscriptions of the user's tenant that the user can see."""
    items = _get_all(access_token, f"{settings.AZURE_ARM_ENDPOINT}/subscriptions",
                     {"api-version": SUBSCRIPTIONS_API_VERSION})
    found = [
        Subscription(id=str(item.get("subscriptionId", "")).lower(), name=str(item.get("displayName", "")))
        for item in items
        if str(item.get("tenantId", "")).lower() == tenant_id.lower() and item.get("state", "Enabled") == "Enabled"
    ]
    return sorted((s for s in found if s.id), key=lambda s: s.name.lower())


def flexible_servers(access_token: str, subscription_id: str) -> list[FoundServer]:
    url = (f"{settings.AZURE_ARM_ENDPOINT}/subscriptions/{subscription_id}"
           "/providers/Microsoft.DBforPostgreSQL/flexibleServers")
    found = []
    for item in _get_all(access_token, url, {"api-version": settings.AZURE_LTR_API_VERSION}):
        parts = str(item.get("id", "")).split("/")
        lowered = [p.lower() for p in parts]
        if "resourcegroups" not in lowered or not item.get("name"):
            continue
        properties = item.get("properties") if isinstance(item.get("properties"), dict) else {}
        found.append(FoundServer(
            subscription_id=subscription_id,
            resource_group=parts[lowered.index("resourcegroups") + 1],
            name=str(item["name"]),
            location=str(item.get("location", "")),
            state=str(properties.get("state", "")),
        ))
    return sorted(found, key=lambda s: (s.resource_group.lower(), s.name.lower()))
