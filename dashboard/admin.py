"""The Django admin for operators: users, servers (editable) and, in checks.admin, the read-only history."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from dashboard.models import Server, User


@admin.register(User)
class EntraUserAdmin(UserAdmin):
    list_display = ["display_name", "upn", "tenant_id", "object_id", "last_login", "is_staff"]
    search_fields = ["display_name", "upn", "object_id"]
    list_filter = ["tenant_id", "is_staff"]
    fieldsets = [
        (None, {"fields": ["username", "display_name", "upn", "tenant_id", "object_id", "home_account_id"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    readonly_fields = ["tenant_id", "object_id", "home_account_id", "last_login", "date_joined"]


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ["name", "resource_group", "subscription_id", "tenant_id", "label", "archived_at"]
    list_filter = ["tenant_id", "archived_at"]
    search_fields = ["name", "resource_group", "subscription_id", "label"]
    readonly_fields = ["tenant_id", "added_by", "added_at", "last_check"]
