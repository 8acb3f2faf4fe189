"""Reading the fleet from Azure for "Import from Azure": the user's subscriptions and the PostgreSQL
flexible servers in each, with the user's own delegated token, through armclient (paced to ARM's read bucket,
retried by its one policy, every page of `nextLink` followed only on the ARM endpoint).

A listing runs inside a web request, so its deadline is short (ARM_MAX_RETRY_WAIT): a long `Retry-After` is
reported, not slept through.
"""

from dataclasses import dataclass

from django.conf import settings

from armclient.conversation import TokenSource
from armclient.operations import ListError, get_all_pages

SUBSCRIPTIONS_API_VERSION = "2022-12-01"
# What a listing that could not be read raises; its `message` says why in the user's words.
InventoryError = ListError


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


def _get_all(tokens: TokenSource, principal_oid: str, scope: str, url: str, params: dict) -> list[dict]:
    return get_all_pages(url, params, tokens=tokens, principal_oid=principal_oid, scope=scope,
                         deadline_seconds=settings.ARM_MAX_RETRY_WAIT)


def subscriptions(tokens: TokenSource, principal_oid: str, tenant_id: str) -> list[Subscription]:
    """The enabled subscriptions of the user's tenant that the user can see."""
    items = _get_all(tokens, principal_oid, "tenant", f"{settings.AZURE_ARM_ENDPOINT}/subscriptions",
                     {"api-version": SUBSCRIPTIONS_API_VERSION})
    found = [
        Subscription(id=str(item.get("subscriptionId", "")).lower(), name=str(item.get("displayName", "")))
        for item in items
        if str(item.get("tenantId", "")).lower() == tenant_id.lower() and item.get("state", "Enabled") == "Enabled"
    ]
    return sorted((s for s in found if s.id), key=lambda s: s.name.lower())


def flexible_servers(tokens: TokenSource, principal_oid: str, subscription_id: str) -> list[FoundServer]:
    url = (f"{settings.AZURE_ARM_ENDPOINT}/subscriptions/{subscription_id}"
           "/providers/Microsoft.DBforPostgreSQL/flexibleServers")
    found = []
    for item in _get_all(tokens, principal_oid, subscription_id, url, {"api-version": settings.AZURE_LTR_API_VERSION}):
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
