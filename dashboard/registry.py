"""Registering many servers at once, for "Import from Azure": a few statements per IMPORT_CHUNK servers
rather than a form, a lookup and an insert per server.

Each pick is checked against ARM's naming rules (as the "Add a server" form does), the tenant's registrations of
those names are read in one query, archived ones come back with their history (as `Server.register` does), and
the rest are inserted together. Two imports racing over the same server meet at the unique index: then this
import falls back to `Server.register` one by one, which settles each race as a single registration does.
"""

from functools import lru_cache

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower

from dashboard.models import Server, User
from dashboard.validators import (
    SERVER_NAME_RE,
    validate_resource_group,
    validate_subscription_id,
)

# Servers read, inserted or restored per statement: a whole default import (IMPORT_MAX_PER_POST) in one.
IMPORT_CHUNK = 1000

Pick = tuple[str, str, str]  # subscription id (lower-case), resource group, server name, as Azure spells them


def valid(subscription_id: str, resource_group: str, name: str) -> bool:
    """Whether a server so named can be registered (ARM's naming rules, as the "Add a server" form has them).
    The import page asks it of every server of a fleet's listing: a subscription and a resource group are
    shared by thousands, and are judged once."""
    # (the name's rule, validate_server_name's pattern, matched whole: a trailing line feed is not a name)
    return (_judged(validate_subscription_id, subscription_id) and _judged(validate_resource_group, resource_group)
            and SERVER_NAME_RE.fullmatch(name) is not None)


@lru_cache(maxsize=4096)
def _judged(validate, value: str) -> bool:
    try:
        validate(value)
    except ValidationError:
        return False
    return True


def parse_picks(values: list[str]) -> tuple[list[Pick], int]:
    """The valid "subscription|resource group|name" picks, once each (names compare without case), and how many
    were not valid."""
    picks: dict[Pick, Pick] = {}
    invalid = 0
    for value in values:
        subscription_id, _, rest = value.strip().partition("|")
        resource_group, _, name = rest.partition("|")
        if not valid(subscription_id, resource_group, name):
            invalid += 1
            continue
        pick = (subscription_id.lower(), resource_group, name)
        picks.setdefault(_key(pick), pick)
    return list(picks.values()), invalid


def _key(pick: Pick) -> Pick:
    return pick[0].lower(), pick[1].lower(), pick[2].lower()


def register_many(picks: list[Pick], *, tenant_id: str, added_by: User) -> tuple[list[str], int]:
    """Register `picks` in the tenant; returns (the names registered or restored, in the picks' order, and how
    many were registered already)."""
    try:
        with transaction.atomic():
            return _register_in_bulk(picks, tenant_id, added_by)
    except IntegrityError:  # another request registered one of them meanwhile: settle each on its own
        names = [n for s, rg, n in picks if Server(tenant_id=tenant_id, subscription_id=s, resource_group=rg,
                                                    name=n, added_by=added_by).register()]
        return names, len(picks) - len(names)


def _register_in_bulk(picks: list[Pick], tenant_id: str, added_by: User) -> tuple[list[str], int]:
    active, archived = _registrations(picks, tenant_id)
    new = [p for p in picks if _key(p) not in active and _key(p) not in archived]
    restore = [archived[_key(p)] for p in picks if _key(p) not in active and _key(p) in archived]
    Server.objects.bulk_create(
        [Server(tenant_id=tenant_id, subscription_id=s, resource_group=rg, name=n, added_by=added_by)
         for s, rg, n in new],
        batch_size=IMPORT_CHUNK,
    )
    for start in range(0, len(restore), IMPORT_CHUNK):
        Server.objects.filter(pk__in=restore[start:start + IMPORT_CHUNK]).update(archived_at=None)
    names = [p[2] for p in picks if _key(p) not in active]
    return names, len(picks) - len(names)


def _registrations(picks: list[Pick], tenant_id: str) -> tuple[set[Pick], dict[Pick, int]]:
    """The picks registered now, and the newest archived registration of each of the others."""
    active: set[Pick] = set()
    archived: dict[Pick, int] = {}
    wanted = {_key(p) for p in picks}
    names = sorted({key[2] for key in wanted})
    for start in range(0, len(names), IMPORT_CHUNK):
        rows = (Server.objects.for_tenant(tenant_id).annotate(lower_name=Lower("name"))
                .filter(lower_name__in=names[start:start + IMPORT_CHUNK])
                .order_by(F("archived_at").desc(nulls_last=True))  # newest archived first
                .values_list("pk", "subscription_id", "resource_group", "name", "archived_at"))
        for pk, subscription_id, resource_group, name, archived_at in rows:
            key = _key((subscription_id, resource_group, name))
            if key not in wanted:
                continue
            if archived_at is None:
                active.add(key)
            else:
                archived.setdefault(key, pk)
    return active, archived
