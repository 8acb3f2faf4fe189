"""The servers and accounts app's URLs: registering, importing, archiving servers; the audit trail; signing in
and out."""

from django.urls import path

from dashboard import audit_views, auth_views, views

urlpatterns = [
    path("servers/add/", views.server_add, name="server_add"),
    path("servers/import/", views.server_import, name="server_import"),
    path("servers/<int:pk>/archive/", views.server_archive, name="server_archive"),
    path("servers/<int:pk>/restore/", views.server_restore, name="server_restore"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("auth/signin/", auth_views.signin, name="signin"),
    path("auth/callback/", auth_views.signin_callback, name="signin_callback"),
    path("auth/signout/", auth_views.signout, name="signout"),
    path("auth/signed-out/", auth_views.signed_out, name="signed_out"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/login/", auth_views.admin_login, name="admin_login"),
    # The admin's own logout would end the session but leave the user's refresh token stored: ours forgets it.
    path("admin/logout/", auth_views.signout, name="admin_logout"),
]
