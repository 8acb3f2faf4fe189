"""Subscription display names for the tenant's pages, so people read "Contoso Production" rather than a GUID.

ARM's subscription list (`GET /subscriptions`, a read) is called with a person's own delegated token: by the
checks worker right after someone signs in to a tenant that has no names yet (or only old ones), so the first
page people see names subscriptions without anyone opening the import; when they open "Import from Azure"; and,
once the names are older than SUBSCRIPTION_NAMES_MAX_AGE_HOURS, by the worker as the person who read them last
(their token renewed silently; never anyone else's). Pages read the
names once per request (`names_for`), through the `subscription_names` context and the `{% subscription %}` tag.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest
from django.tasks import task
from django.utils import timezone

from armclient.onewriter import one_writer
from dashboard import entra, inventory
from dashboard.models import SubscriptionName, User

log = logging.getLogger(__name__)


def names_for_tenant(tenant_id: str) -> dict[str, str]:
    """Lower-case subscription id -> display name, for one tenant: one query."""
    rows = SubscriptionName.objects.filter(tenant_id=tenant_id).exclude(display_name="")
    return dict(rows.values_list("subscription_id", "display_name"))


def names_for(request: HttpRequest) -> dict[str, str]:
    """The signed-in user's tenant's names, read once per request whatever asks for them."""
    if not hasattr(request, "_subscription_names"):
        user = getattr(request, "user", None)
        tenant = getattr(user, "tenant_id", "") if user is not None and user.is_authenticated else ""
        request._subscription_names = names_for_tenant(tenant) if tenant else {}
    return request._subscription_names


def name_of(names: dict[str, str], subscription_id: str) -> str:
    return names.get(str(subscription_id).lower(), "")


# A list read empty is kept as one row with no subscription id and no name (never shown: pages read named
# rows, exports match real ids), so its time says the tenant was read and a sign-in does not queue it again.
NOTHING_READ = ""


def remember(user: User, seen: list[inventory.Subscription]) -> None:
    """Keep the names `user`'s token just read (one statement whatever their number); none, as NOTHING_READ."""
    now = timezone.now()
    rows = [SubscriptionName(tenant_id=user.tenant_id, subscription_id=s.id, display_name=s.name, state=s.state,
                             fetched_at=now, fetched_by=user) for s in seen] or [
        SubscriptionName(tenant_id=user.tenant_id, subscription_id=NOTHING_READ, display_name="", fetched_at=now,
                         fetched_by=user)]
    with one_writer():  # also run by the checks worker (refresh_old_names, read_names_as)
        SubscriptionName.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["tenant_id", "subscription_id"],
            update_fields=["display_name", "state", "fetched_at", "fetched_by"],
        )


def refresh(tokens, user: User) -> list[inventory.Subscription]:
    """List the user's subscriptions from ARM and remember their names. Raises inventory.InventoryError."""
    seen = inventory.tenant_subscriptions(tokens, user.object_id, user.tenant_id)
    remember(user, seen)
    return seen


def refresh_old_names() -> int:
    """The worker's periodic job: read again the names of each tenant whose newest name is older than
    SUBSCRIPTION_NAMES_MAX_AGE_HOURS, as the person who read them last. A person whose token cannot be renewed
    silently is skipped (the names stay as they were) until they sign in or list again. Returns tenants done."""
    oldest = timezone.now() - timedelta(hours=settings.SUBSCRIPTION_NAMES_MAX_AGE_HOURS)
    # Names only: an empty read (NOTHING_READ) says nothing of the names, nor who can read them.
    named = SubscriptionName.objects.exclude(subscription_id=NOTHING_READ)
    stale = named.values("tenant_id").annotate(newest=Max("fetched_at")).filter(newest__lt=oldest).values_list(
        "tenant_id", flat=True)
    done = 0
    for tenant_id in list(stale):
        latest = (named.filter(tenant_id=tenant_id, fetched_by__isnull=False)
                  .select_related("fetched_by").order_by("-fetched_at").first())
        if latest is None:
            continue
        try:
            refresh(entra.token_source(latest.fetched_by), latest.fetched_by)
        except inventory.InventoryError as exc:
            log.info("Subscription names of tenant %s not refreshed: %s", tenant_id, exc.message)
            continue
        done += 1
    return done


def read_after_sign_in(user: User) -> None:
    """After a sign-in through Entra ID: a tenant without names, or with old ones, has them read as this person,
    in the worker (the sign-in answers at once; ARM's list can take seconds for a large tenant). Not when this
    person's own list read empty lately (remember's NOTHING_READ row, theirs and recent): a colleague who sees
    none does not stop it for one who may see them."""
    tenant_id = user.tenant_id
    if not settings.SUBSCRIPTION_NAMES_AT_SIGN_IN:
        return
    oldest = timezone.now() - timedelta(hours=settings.SUBSCRIPTION_NAMES_MAX_AGE_HOURS)
    recent = SubscriptionName.objects.filter(tenant_id=tenant_id, fetched_at__gte=oldest)
    if recent.exclude(subscription_id=NOTHING_READ).exists() or recent.filter(
            subscription_id=NOTHING_READ, fetched_by=user).exists():
        return
    try:
        read_names_as.enqueue(user.pk)
    except Exception:
        # The names are a convenience: a queue that refuses costs the sign-in nothing (the import reads them).
        log.exception("Subscription names of tenant %s could not be queued for reading", tenant_id)


@task()
def read_names_as(user_pk: int) -> int:
    """The worker's read of a tenant's subscription names with `user_pk`'s silently renewed token. Returns how
    many were read; 0 when the person is gone or their token cannot be renewed (logged, nothing changes)."""
    user = User.objects.filter(pk=user_pk).first()
    if user is None:
        return 0
    try:
        return len(refresh(entra.token_source(user), user))
    except inventory.InventoryError as exc:
        log.info("Subscription names of tenant %s not read after sign-in: %s", user.tenant_id, exc.message)
        return 0
