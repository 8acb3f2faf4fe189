from django.contrib import admin

from schedules.models import Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant_id", "owner", "cadence", "state", "next_run_at", "last_run_at"]
    list_filter = ["state", "cadence"]
    search_fields = ["name", "tenant_id"]
    raw_id_fields = ["owner", "last_batch"]
