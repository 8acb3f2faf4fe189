"""What the "Import from Azure" page makes of a kept listing (dashboard.inventory) against the tenant's
registrations: per subscription, how many servers Azure lists, how many are registered here and how many are
new; the new ones to pick from; and the registered servers Azure no longer lists.

A fleet's listing holds thousands of servers. Drawn whole, 10,000 servers were a 3.9 MB page that took 0.8 s
from a kept listing: the registered ones are only counted now, at most SHOWN new servers (and SHOWN of those
Azure no longer lists) are drawn as rows, a search narrows the new ones, and "Import all" registers every new
server of the listing (or of one subscription) without a checkbox each.
"""

from dataclasses import dataclass, field

from django.db.models.functions import Lower

from dashboard.models import ImportListing, Server
from dashboard.registry import Pick, valid

SHOWN = 100  # rows drawn of the new servers (all subscriptions together), and of those Azure no longer lists


def _key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    return subscription_id.lower(), resource_group.lower(), name.lower()


@dataclass
class Comparison:
    groups: list[dict] = field(default_factory=list)  # each subscription: its counts, error and rows drawn
    importable: int = 0  # new servers in the listing, whatever the search
    matching: int = 0  # new servers the search matches (all of them without one)
    drawn: int = 0  # new servers drawn as rows (at most SHOWN)
    unfit: int = 0  # servers Azure lists under a name this dashboard cannot register (never offered)
    orphans: list[dict] = field(default_factory=list)  # registered, no longer listed: the first SHOWN
    orphans_total: int = 0


def _registered(tenant_id: str) -> list[tuple]:
    """The tenant's active registrations, as (pk, subscription id, resource group, name): no check is read."""
    return list(Server.objects.for_tenant(tenant_id).active().order_by(Lower("name"), "pk")
                .values_list("pk", "subscription_id", "resource_group", "name"))


def _matches(found: dict, search: str) -> bool:
    return not search or search in found["name"].lower() or search in found["resource_group"].lower()


def compare(listing: ImportListing, tenant_id: str, *, search: str = "", cap: int,
            orphans_shown: int | None = SHOWN) -> Comparison:
    """The page's view of `listing`: new servers matching `search` (a part of a name or resource group, any case)
    drawn up to SHOWN, the first `cap` of them picked (what one import takes); the first `orphans_shown` of the
    registered servers Azure no longer lists (None: all of them)."""
    registered = [(row, _key(*row[1:])) for row in _registered(tenant_id)]
    keys = {key for _, key in registered}
    search = search.strip().lower()
    result, drawn, listed = Comparison(), 0, set()
    for group in listing.groups:
        counts = {"listed": 0, "registered": 0, "new": 0, "matching": 0, "unfit": 0}
        rows = []
        for found in group["servers"]:
            key = _key(found["subscription_id"], found["resource_group"], found["name"])
            listed.add(key)
            counts["listed"] += 1
            if key in keys:
                counts["registered"] += 1
                continue
            if not valid(found["subscription_id"], found["resource_group"], found["name"]):
                counts["unfit"] += 1
                continue
            counts["new"] += 1
            if not _matches(found, search):
                continue
            counts["matching"] += 1
            if drawn < SHOWN:
                drawn += 1
                rows.append({"server": found, "picked": drawn <= cap})
        result.importable += counts["new"]
        result.matching += counts["matching"]
        result.unfit += counts["unfit"]
        result.groups.append({**group, **counts, "rows": rows, "hidden": counts["matching"] - len(rows)})
    result.drawn = drawn
    gone = _gone(listing, registered, listed)
    result.orphans, result.orphans_total = gone[:orphans_shown], len(gone)
    return result


def _gone(listing: ImportListing, registered: list[tuple], listed: set[tuple]) -> list[dict]:
    """The registered servers Azure no longer lists: only in subscriptions that were listed whole, since a
    subscription that failed to list says nothing about its servers."""
    whole = {g["subscription"]["id"].lower() for g in listing.groups if g["error"] is None}
    return [{"pk": pk, "subscription_id": s, "resource_group": rg, "name": n} for (pk, s, rg, n), key in registered
            if key[0] in whole and key not in listed]


def orphan_ids(listing: ImportListing, tenant_id: str) -> set[int]:
    return {row["pk"] for row in compare(listing, tenant_id, cap=0, orphans_shown=None).orphans}


def subscription_ids(listing: ImportListing) -> set[str]:
    return {g["subscription"]["id"].lower() for g in listing.groups}


def new_servers(listing: ImportListing, tenant_id: str, subscription_id: str = "") -> list[Pick]:
    """Every server of the listing (of one subscription, if named) not registered in the tenant and fit to be
    (what the page counts as new), as picks."""
    keys = {_key(s, rg, n) for _, s, rg, n in _registered(tenant_id)}
    return [(f["subscription_id"].lower(), f["resource_group"], f["name"])
            for g in listing.groups if not subscription_id or g["subscription"]["id"].lower() == subscription_id
            for f in g["servers"] if _key(f["subscription_id"], f["resource_group"], f["name"]) not in keys
            and valid(f["subscription_id"], f["resource_group"], f["name"])]
