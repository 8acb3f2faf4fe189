"""The root URLs: the servers and accounts app, the checks app, the LTR backups app, the evidence report, and
Django's admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("checks.urls")),
    path("", include("backups.urls")),
    path("schedules/", include("schedules.urls")),
    path("alerts/", include("alerts.urls")),
    path("evidence/", include("evidence.urls")),
    # dashboard.urls before admin/: its admin/login/ replaces the admin's password form.
    path("", include("dashboard.urls")),
    path("admin/", admin.site.urls),
]
