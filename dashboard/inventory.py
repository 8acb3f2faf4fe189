"""Reading the fleet from Azure for "Import from Azure": the user's subscriptions and the PostgreSQL
flexible servers in each, with the user's own delegated token, through armclient (paced to ARM's read bucket,
retried by its one policy, every page of `nextLink` followed only on the ARM endpoint).

A listing runs inside a web request, so its deadline is short (ARM_MAX_RETRY_WAIT): a long `Retry-After` is
reported, not slept through. What it found is kept per user (models.ImportListing) for
IMPORT_LISTING_TTL_SECONDS, so a reload does not list the fleet from ARM again.
"""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from armclient.conversation import TokenSource
from armclient.operations import ListError, get_all_pages
from dashboard.models import ImportListing

SUBSCRIPTIONS_API_VERSION = "2022-12-01"
# What a listing that could not be read raises; its `message` says why in the user's words.
InventoryError = ListError


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str
    state: str = "Enabled"


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


def tenant_subscriptions(tokens: TokenSource, principal_oid: str, tenant_id: str) -> list[Subscription]:
    """The subscriptions of the user's tenant that the user can see, whatever their state, by name."""
    items = _get_all(tokens, principal_oid, "tenant", f"{settings.AZURE_ARM_ENDPOINT}/subscriptions",
                     {"api-version": SUBSCRIPTIONS_API_VERSION})
    found = [
        Subscription(id=str(item.get("subscriptionId", "")).lower()[:36], name=str(item.get("displayName", ""))[:200],
                     state=str(item.get("state", "Enabled"))[:40])
        for item in items
        if str(item.get("tenantId", "")).lower() == tenant_id.lower()
    ]
    return sorted((s for s in found if s.id), key=lambda s: s.name.lower())


def subscriptions(tokens: TokenSource, principal_oid: str, tenant_id: str) -> list[Subscription]:
    """The enabled subscriptions of the user's tenant that the user can see."""
    return [s for s in tenant_subscriptions(tokens, principal_oid, tenant_id) if s.state == "Enabled"]


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



def list_fleet(tokens: TokenSource, user, seen: list[Subscription]) -> list[dict]:
    """Each enabled subscription of `seen` with its flexible servers or the error that kept them from being
    listed, as plain data (what ImportListing keeps)."""
    groups = []
    for subscription in (s for s in seen if s.state == "Enabled"):
        group = {"subscription": asdict(subscription), "error": None, "servers": []}
        try:
            group["servers"] = [asdict(s) for s in flexible_servers(tokens, user.object_id, subscription.id)]
        except InventoryError as exc:
            group["error"] = {"message": exc.message, "code": exc.code, "request_id": exc.request_id}
        groups.append(group)
    return groups


def cached_listing(user) -> ImportListing | None:
    """The user's listing if it is younger than IMPORT_LISTING_TTL_SECONDS, else None."""
    oldest = timezone.now() - timedelta(seconds=settings.IMPORT_LISTING_TTL_SECONDS)
    return ImportListing.objects.filter(user=user, fetched_at__gte=oldest).first()


def fresh_listing(tokens: TokenSource, user, seen: list[Subscription]) -> ImportListing:
    """List the servers of the subscriptions `seen` from ARM now, and keep that as the user's listing."""
    groups = list_fleet(tokens, user, seen)
    listing, _ = ImportListing.objects.update_or_create(
        user=user, defaults={"fetched_at": timezone.now(), "groups": groups})
    return listing


def forget_listing(user) -> None:
    ImportListing.objects.filter(user=user).delete()
