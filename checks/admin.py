"""Checks in the admin: visible to operators, never edited or deleted (history is evidence)."""

from django.contrib import admin

from checks.models import Check
from dashboard.admin import ReadOnlyAdmin


@admin.register(Check)
class CheckAdmin(ReadOnlyAdmin):
    list_display = ["id", "server", "status", "category", "number_of_containers", "error_code",
                    "requested_by_name", "created_at"]
    list_filter = ["status", "category"]
    search_fields = ["server__name", "request_id", "correlation_request_id", "client_request_id", "backup_name"]
    list_select_related = ["server"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]
