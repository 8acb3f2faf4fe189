"""Reading the fleet from Azure for "Import from Azure": the user's subscriptions and the PostgreSQL
flexible servers in each, with the user's own delegated token, through armclient (paced to ARM's read bucket,
retried by its one policy, every page of `nextLink` followed only on the ARM endpoint).

A listing runs inside a web request: the subscriptions' list, then the servers of all subscriptions together,
each within IMPORT_LISTING_SECONDS (under the documented web timeout), a subscription not reached by then
reported as not listed; a `Retry-After` longer than ARM_MAX_RETRY_WAIT is reported, not slept through. What it found is
kept per user (models.ImportListing) for IMPORT_LISTING_TTL_SECONDS, so a reload does not list the fleet from
ARM again.
"""

import time
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


def _get_all(tokens: TokenSource, principal_oid: str, scope: str, url: str, params: dict,
             seconds: float | None = None) -> list[dict]:
    return get_all_pages(url, params, tokens=tokens, principal_oid=principal_oid, scope=scope,
                         deadline_seconds=settings.IMPORT_LISTING_SECONDS if seconds is None else seconds)


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


def flexible_servers(tokens: TokenSource, principal_oid: str, subscription_id: str,
                     seconds: float | None = None) -> list[FoundServer]:
    url = (f"{settings.AZURE_ARM_ENDPOINT}/subscriptions/{subscription_id}"
           "/providers/Microsoft.DBforPostgreSQL/flexibleServers")
    found = []
    params = {"api-version": settings.AZURE_LTR_API_VERSION}
    for item in _get_all(tokens, principal_oid, subscription_id, url, params, seconds):
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
    ends = time.monotonic() + settings.IMPORT_LISTING_SECONDS  # (all subscriptions together)
    for subscription in (s for s in seen if s.state == "Enabled"):
        group = {"subscription": asdict(subscription), "error": None, "servers": []}
        left = ends - time.monotonic()
        try:
            if left <= 0:
                raise InventoryError(f"Not listed: listing the fleet took longer than {settings.IMPORT_LISTING_SECONDS}"
                                     " s before this subscription's turn.")
            group["servers"] = [asdict(s) for s in flexible_servers(tokens, user.object_id, subscription.id, left)]
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
