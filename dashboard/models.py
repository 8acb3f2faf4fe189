"""The people who sign in, their delegated-token caches, and the servers they register.

Everything a user sees is scoped to their Entra tenant: `Server.tenant_id` is copied from the user who
added it, and every query starts from `Server.objects.for_tenant()`.
"""

from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, models, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone


class User(AbstractUser):
    """A person signed in through Microsoft Entra ID; `username` is "<tenant id>.<object id>"."""

    tenant_id = models.CharField(max_length=36, db_index=True)
    object_id = models.CharField(max_length=36)
    # MSAL's account key ("<oid>.<tid>") for finding this user's account in their token cache.
    home_account_id = models.CharField(max_length=80, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    upn = models.CharField("user principal name", max_length=254, blank=True)
    # The app role values of the ID token at the last sign-in (dashboard.roles decides what they grant).
    entra_roles = models.JSONField(default=list, blank=True)
    # Someone of this tenant signed in with an app role, so having none means no role (dashboard.roles).
    tenant_uses_app_roles = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant_id", "object_id"], name="user_unique_entra_identity"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.upn or self.username


class TokenCache(models.Model):
    """One user's MSAL token cache, encrypted (see dashboard.tokencache). Never sent to the browser."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="token_cache")
    encrypted = models.BinaryField()
    # Bumped on every write: a process that read version N writes only if the row is still at N.
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Token cache of user {self.user_id}"


class ServerQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "ServerQuerySet":
        return self.filter(tenant_id=tenant_id)

    def active(self) -> "ServerQuerySet":
        return self.filter(archived_at__isnull=True)

    def matching(self, subscription_id: str, resource_group: str, name: str) -> "ServerQuerySet":
        return self.filter(
            subscription_id__iexact=subscription_id, resource_group__iexact=resource_group, name__iexact=name
        )


class Server(models.Model):
    """A flexible server a team registered. Archived, never deleted, so its checks keep their server."""

    tenant_id = models.CharField(max_length=36)
    subscription_id = models.CharField(max_length=36)
    resource_group = models.CharField(max_length=90)
    name = models.CharField(max_length=63)
    label = models.CharField(max_length=100, blank=True)
    added_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Current state kept on the row (the newest check), so the list needs no per-row history query.
    last_check = models.ForeignKey(
        "checks.Check", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The readiness the checks app keeps (its Readiness row: "ready", "not_ready"; "" never checked) and since
    # when, copied here when it changes, so the list sorts by them with an index of this table alone.
    readiness_state = models.CharField(max_length=12, blank=True, default="", db_default="")
    readiness_since = models.DateTimeField(null=True, blank=True)

    objects = ServerQuerySet.as_manager()

    class Meta:
        constraints = [
            # ARM names are case-insensitive: one active registration per server per tenant.
            models.UniqueConstraint(
                "tenant_id",
                Lower("subscription_id"),
                Lower("resource_group"),
                Lower("name"),
                condition=models.Q(archived_at__isnull=True),
                name="server_unique_active_per_tenant",
            ),
        ]
        indexes = [
            # The server list: active servers of one tenant.
            models.Index(fields=["tenant_id", "archived_at"], name="server_tenant_active_idx"),
            # Each of the list's sorts (checks.fleet_state.SORTS): the tenant's active servers read in order, both
            # directions (a backward scan), so page 1 of 10,000 servers reads 100 index entries rather than sorting
            # them all. "Never" sorts as the oldest: never changed = since added, never checked = check 0.
            *(models.Index(*columns, name=name, condition=models.Q(archived_at__isnull=True)) for name, columns in (
                ("server_list_name_idx", ("tenant_id", Lower("name"), "resource_group", "subscription_id")),
                ("server_list_readiness_idx", ("tenant_id", "readiness_state", Lower("name"), "id")),
                ("server_list_changed_idx", ("tenant_id", Coalesce("readiness_since", "added_at"), "id")),
                ("server_list_checked_idx", ("tenant_id", Coalesce("last_check_id", Value(0)), "id")),
            )),
            # The counts at the top of the list, grouped by place and readiness (checks.fleet_state.overview):
            # read off this index (PostgreSQL: an index-only scan) rather than the table, whose rows are
            # rewritten at every check (last_check_id) and spread thin, and with no join to the readiness.
            models.Index(fields=["tenant_id", "subscription_id", "resource_group", "readiness_state", "id"],
                         condition=models.Q(archived_at__isnull=True), name="server_places_state_idx"),
        ]

    def __str__(self) -> str:
        return self.label or self.name

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{self.name}"
        )

    @property
    def active_check(self):
        check = self.last_check
        return check if check is not None and check.is_active else None

    def register(self) -> bool:
        """Save a new registration; False if another request registered the same server a moment before
        (the form checked, but two clicks can pass that check together; the unique index decides).

        A server registered before and archived comes back with its history rather than as a stranger.
        """
        archived = (
            Server.objects.for_tenant(self.tenant_id)
            .filter(archived_at__isnull=False)
            .matching(self.subscription_id, self.resource_group, self.name)
            .order_by("-archived_at")
            .first()
        )
        if archived is not None:
            archived.label = self.label or archived.label
            self.pk = archived.pk if archived.restore() else None
            return self.pk is not None
        try:
            with transaction.atomic():
                self.save()
        except IntegrityError:
            return False
        return True

    def archive(self) -> bool:
        """Take the server off the list, keeping its history; False while its check is in progress."""
        if self.active_check is not None:
            return False
        self.archived_at = timezone.now()
        self.save(update_fields=["archived_at"])
        return True

    def restore(self) -> bool:
        """Put an archived server back on the list; False if it was registered again meanwhile."""
        archived_at, self.archived_at = self.archived_at, None
        try:
            with transaction.atomic():
                self.save(update_fields=["archived_at", "label"])
        except IntegrityError:
            self.archived_at = archived_at
            return False
        return True


class ImportListing(models.Model):
    """What "Import from Azure" last read from ARM for one user: each subscription with its servers or the error
    that kept them from being listed. Kept IMPORT_LISTING_TTL_SECONDS in the database, so a reload on any web
    process does not list the whole fleet again; "Refresh from Azure" drops it."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="+")
    fetched_at = models.DateTimeField()
    # [{"subscription": {"id", "name"}, "error": {"message", "code", "request_id"} | None, "servers": [...]}]
    groups = models.JSONField()

    def __str__(self) -> str:
        return f"Import listing of user {self.user_id} at {self.fetched_at:%Y-%m-%d %H:%M:%S}"


class SubscriptionName(models.Model):
    """A subscription's display name as ARM's subscription list gave it to someone of the tenant, so pages show
    names rather than GUIDs. Refreshed when that person lists for import, and by the worker when old."""

    tenant_id = models.CharField(max_length=36)
    subscription_id = models.CharField(max_length=36)  # lower-case, as servers are registered
    display_name = models.CharField(max_length=200)
    state = models.CharField(max_length=40, blank=True)
    fetched_at = models.DateTimeField()
    # Whose token read it: the worker's refresh reads again as this person, never as anyone else.
    fetched_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant_id", "subscription_id"], name="subscription_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.subscription_id})"


# The rate limit's counters (dashboard.ratelimit) and the audit trail (dashboard.audit), models of this app.
from dashboard.audit import AuditEvent  # noqa: E402,F401
from dashboard.ratelimit import RateWindow  # noqa: E402,F401
