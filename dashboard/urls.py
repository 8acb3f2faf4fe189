from django.contrib import admin
from django.urls import include, path

from checks import views as checks_views
from dashboard import auth_views, views

urlpatterns = [
    path("", views.server_list, name="server_list"),
    path("servers/add/", views.server_add, name="server_add"),
    path("servers/import/", views.server_import, name="server_import"),
    path("servers/<int:pk>/", views.server_detail, name="server_detail"),
    path("servers/<int:pk>/row/", views.server_row, name="server_row"),
    path("servers/<int:pk>/archive/", views.server_archive, name="server_archive"),
    path("servers/<int:pk>/restore/", views.server_restore, name="server_restore"),
    path("servers/<int:pk>/run/", checks_views.run, name="run_check"),
    path("checks/", checks_views.history, name="history"),
    path("checks/export.csv", checks_views.export, name="history_export"),
    path("checks/<int:pk>/", checks_views.detail, name="check_detail"),
    path("checks/<int:pk>/row/", checks_views.check_row, name="check_row"),
    path("checks/<int:pk>/reauth/", checks_views.reauth, name="check_reauth"),
    path("batches/", checks_views.batch_create, name="batch_create"),
    path("batches/<int:pk>/", checks_views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/progress/", checks_views.batch_progress, name="batch_progress"),
    path("batches/<int:pk>/cancel/", checks_views.batch_cancel, name="batch_cancel"),
    path("batches/<int:pk>/rerun-failed/", checks_views.batch_rerun_failed, name="batch_rerun_failed"),
    path("auth/signin/", auth_views.signin, name="signin"),
    path("auth/callback/", auth_views.signin_callback, name="signin_callback"),
    path("auth/signout/", auth_views.signout, name="signout"),
    path("auth/signed-out/", auth_views.signed_out, name="signed_out"),
    path("alerts/", include("alerts.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/login/", auth_views.admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
]
