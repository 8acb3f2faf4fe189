"""The backups app's URLs: a server's LTR backups fragment, refreshing it from Azure, the tenant's alert setting."""

from django.urls import path

from backups import views

urlpatterns = [
    path("servers/<int:pk>/backups/", views.server_backups, name="server_backups"),
    path("servers/<int:pk>/backups/refresh/", views.refresh_backups, name="refresh_backups"),
    path("backups/alerts/", views.alert_setting, name="ltr_alert_setting"),
]
