"""The Django admin for operators: users, servers (editable), the read-only audit trail and, in checks.admin,
the read-only history."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from dashboard.models import AuditEvent, Server, User


@admin.register(User)
class EntraUserAdmin(UserAdmin):
    list_display = ["display_name", "upn", "tenant_id", "object_id", "last_login", "is_staff"]
    search_fields = ["display_name", "upn", "object_id"]
    list_filter = ["tenant_id", "is_staff"]
    fieldsets = [
        (None, {"fields": ["username", "display_name", "upn", "tenant_id", "object_id", "home_account_id"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        # Roles come from Entra ID at each sign-in (dashboard.roles); the flag may be cleared here when a tenant
        # stops using app roles, as nothing else clears it.
        ("Roles", {"fields": ["entra_roles", "tenant_uses_app_roles"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    readonly_fields = ["tenant_id", "object_id", "home_account_id", "entra_roles", "last_login", "date_joined"]


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ["name", "resource_group", "subscription_id", "tenant_id", "label", "archived_at"]
    list_filter = ["tenant_id", "archived_at"]
    search_fields = ["name", "resource_group", "subscription_id", "label"]
    readonly_fields = ["tenant_id", "added_by", "added_at", "last_check"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin for records that are evidence (the history, the audit trail): shown, never added, changed or
    deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail, read-only: no add, no change, no delete (the model refuses them too)."""

    list_display = ["created_at", "tenant_id", "actor_name", "action", "target_type", "target_name", "client_ip"]
    list_filter = ["action", "tenant_id"]
    search_fields = ["actor_name", "actor_oid", "target_name"]
