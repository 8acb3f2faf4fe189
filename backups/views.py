"""A server's LTR backups as a fragment of its page and "Refresh from Azure" (which the fragment also posts
every few seconds while a backup runs, so its progress is live; 286 stops that once none runs), and the
tenant's LTR backup alert setting."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from backups.forms import LtrAlertSettingForm
from backups.models import LtrAlertSetting, LtrBackup, LtrRefresh
from backups.refresh import RefreshFailed, refresh
from dashboard import audit
from dashboard.audit import Action
from dashboard.models import Server
from dashboard.roles import ADMIN, forbidden, has_role
from dashboard.views import get_server_for_user

TEMPLATE = "backups/ltr_backups.html"


def _fragment(request: HttpRequest, server: Server, *, error: RefreshFailed | None = None,
              notice: str = "") -> HttpResponse:
    # Every query names the tenant: the server was found in the user's tenant, and so must its rows be.
    backups = list(LtrBackup.objects.filter(server=server, tenant_id=server.tenant_id))
    last = LtrRefresh.objects.filter(server=server, tenant_id=server.tenant_id).select_related("refreshed_by").first()
    running = any(b.is_running for b in backups)
    context = {"server": server, "backups": backups, "last_refresh": last, "running": running, "error": error,
               "notice": notice}
    response = render(request, TEMPLATE, context)
    if not running:
        # htmx swaps this answer in and stops polling: no backup is running any more.
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_http_methods(["GET", "POST"])
def alert_setting(request: HttpRequest) -> HttpResponse:
    """The tenant's "no successful LTR backup in N days" (a row is made on the first save): anyone of the tenant
    sees it, an admin changes it (as alert channels), and the change is audited."""
    if request.method == "POST" and not has_role(request.user, ADMIN):
        return forbidden(request, ADMIN)
    tenant_id = request.user.tenant_id
    setting = (LtrAlertSetting.objects.filter(tenant_id=tenant_id).select_related("updated_by").first()
               or LtrAlertSetting(tenant_id=tenant_id, days_without_success=settings.LTR_GAP_DAYS))
    form = LtrAlertSettingForm(request.POST or None, instance=setting)
    if request.method == "POST" and form.is_valid():
        form.instance.tenant_id, form.instance.updated_by = tenant_id, request.user
        form.save()
        audit.record(request, Action.SETTINGS_CHANGE, form.instance, target_name="LTR backup alerts",
                     days_without_success=form.instance.days_without_success)
        messages.success(request, f"Alerts now follow a server without a successful LTR backup for "
                                  f"{form.instance.days_without_success} days.")
        return redirect("ltr_alert_setting")
    status = 400 if request.method == "POST" else 200  # as every other form that refuses what was sent
    return render(request, "backups/alert_setting.html", {"form": form, "setting": setting}, status=status)


@require_GET
def server_backups(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_server_for_user(request, pk, active_only=False)
    return _fragment(request, server)


@require_POST
def refresh_backups(request: HttpRequest, pk: int) -> HttpResponse:
    """Read the server's LTR backups from Azure now, with the user's token; a failure changes nothing."""
    server = get_server_for_user(request, pk)
    error, notice = None, ""
    try:
        listed = refresh(server, request.user)
        notice = f"Azure lists {listed} LTR backup operation{'s' if listed != 1 else ''} for this server."
    except RefreshFailed as exc:
        error = exc
    if request.htmx:
        return _fragment(request, server, error=error, notice=notice)
    if error:
        messages.error(request, f"The LTR backups could not be read from Azure: {error.message}")
    else:
        messages.success(request, notice)
    return redirect("server_detail", pk=server.pk)
