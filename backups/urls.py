"""The backups app's URLs: a server's LTR backups fragment and refreshing it from Azure."""

from django.urls import path

from backups import views

urlpatterns = [
    path("servers/<int:pk>/backups/", views.server_backups, name="server_backups"),
    path("servers/<int:pk>/backups/refresh/", views.refresh_backups, name="refresh_backups"),
]
