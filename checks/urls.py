"""The checks app's URLs: the server list with each server's check state, a server's page and history,
and running one check or a batch."""

from django.urls import path

from checks import metrics
from checks.views import batches, charts, history, servers

urlpatterns = [
    path("", servers.server_list, name="server_list"),
    path("servers/chart/", charts.fleet_chart, name="fleet_chart"),
    path("servers/<int:pk>/", servers.server_detail, name="server_detail"),
    path("servers/<int:pk>/row/", servers.server_row, name="server_row"),
    path("servers/<int:pk>/run/", servers.run, name="run_check"),
    path("servers/<int:pk>/timeline/", charts.server_timeline, name="server_timeline"),
    path("checks/", history.history, name="history"),
    path("checks/export.csv", history.export, name="history_export"),
    path("checks/export.jsonl", history.export_jsonl, name="history_export_jsonl"),
    path("checks/servers.json", history.server_names, name="history_server_names"),
    path("checks/<int:pk>/", history.detail, name="check_detail"),
    path("checks/<int:pk>/row/", history.check_row, name="check_row"),
    path("checks/<int:pk>/reauth/", servers.reauth, name="check_reauth"),
    path("batches/", batches.batch_create, name="batch_create"),
    path("batches/<int:pk>/", batches.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/progress/", batches.batch_progress, name="batch_progress"),
    path("batches/<int:pk>/cancel/", batches.batch_cancel, name="batch_cancel"),
    path("batches/<int:pk>/rerun-failed/", batches.batch_rerun_failed, name="batch_rerun_failed"),
    path("metrics", metrics.metrics, name="metrics"),
]
