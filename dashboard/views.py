"""Registering, importing, archiving and restoring servers, and /healthz. A server's page and the list of
servers are the checks app's (they show each server's checks)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dashboard import audit, entra, inventory
from dashboard.audit import Action
from dashboard.auth_views import sign_in_again
from dashboard.forms import ServerForm
from dashboard.models import Server
from dashboard.roles import ADMIN, role_required


def get_server_for_user(request: HttpRequest, pk: int, *, active_only: bool = True) -> Server:
    """The user's tenant's server `pk` (active only unless asked), with its last check; 404 otherwise."""
    servers = Server.objects.for_tenant(request.user.tenant_id).select_related("last_check")
    if active_only:
        servers = servers.active()
    return get_object_or_404(servers, pk=pk)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def server_add(request: HttpRequest) -> HttpResponse:
    form = ServerForm(request.POST or None, tenant_id=request.user.tenant_id)
    if request.method == "POST" and form.is_valid():
        server = form.save(commit=False)
        server.tenant_id = request.user.tenant_id
        server.added_by = request.user
        if server.register():
            audit.record(request, Action.SERVER_REGISTER, server, resource_group=server.resource_group,
                         subscription_id=server.subscription_id)
            messages.success(request, f"Registered {server.name}.")
            return redirect("server_list")
        form.add_error(None, "This server is already registered (names are compared without regard to case).")
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboard/server_form.html", {"form": form}, status=status)


@require_POST
@role_required(ADMIN)
def server_archive(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_server_for_user(request, pk)
    if not server.archive():
        messages.error(request, f"{server.name} has a check in progress; archive it when the check ends.")
        return redirect("server_detail", pk=server.pk)
    audit.record(request, Action.SERVER_ARCHIVE, server)
    messages.success(request, f"Archived {server.name}. Its history is kept; restore it from its page "
                              "or by registering it again.")
    return redirect("server_list")


@require_POST
@role_required(ADMIN)
def server_restore(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_server_for_user(request, pk, active_only=False)
    if server.restore():
        audit.record(request, Action.SERVER_RESTORE, server)
        messages.success(request, f"Restored {server.name}; its history is back on the list.")
    else:  # registered again meanwhile as a new entry
        messages.error(request, f"{server.name} is registered already; this archived entry stays archived.")
    return redirect("server_detail", pk=pk)


@login_not_required
@never_cache
@require_safe  # GET and HEAD: load balancers probe with either
def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def server_import(request: HttpRequest) -> HttpResponse:
    """List the flexible servers the user can see in Azure, and register the ones they pick."""
    if request.method == "POST":
        return _import_selected(request)
    token = entra.arm_token(request.user)
    if token.access_token is None:
        if not token.interaction_required:
            messages.error(request, token.error_description or "Entra ID could not be reached.")
            return redirect("server_list")
        return sign_in_again(request, next_url=reverse("server_import"))
    groups, error = [], None
    try:
        groups = _servers_in_azure(entra.token_source(request.user, first=token), request.user)
    except inventory.InventoryError as exc:
        error = exc
    importable = sum(not row["registered"] for group in groups for row in group["servers"])
    return render(request, "dashboard/server_import.html", {"groups": groups, "error": error, "importable": importable})


def _servers_in_azure(tokens, user) -> list[dict]:
    """Each subscription the user's token sees, with its flexible servers (each marked if registered already)
    or the error that kept them from being listed."""
    registered = {
        (s.subscription_id.lower(), s.resource_group.lower(), s.name.lower())
        for s in Server.objects.for_tenant(user.tenant_id).active()
    }
    groups = []
    for subscription in inventory.subscriptions(tokens, user.object_id, user.tenant_id):
        try:
            found = inventory.flexible_servers(tokens, user.object_id, subscription.id)
        except inventory.InventoryError as exc:
            groups.append({"subscription": subscription, "error": exc, "servers": []})
            continue
        rows = [{"server": s, "registered": (s.subscription_id, s.resource_group.lower(), s.name.lower()) in registered}
                for s in found]
        groups.append({"subscription": subscription, "error": None, "servers": rows})
    return groups


def _import_selected(request: HttpRequest) -> HttpResponse:
    imported = already = invalid = 0
    tenant = request.user.tenant_id
    names = []
    for value in request.POST.getlist("server")[:5000]:
        subscription_id, _, rest = value.partition("|")
        resource_group, _, name = rest.partition("|")
        form = ServerForm({"subscription_id": subscription_id, "resource_group": resource_group, "name": name},
                          tenant_id=tenant)
        if form.is_valid():
            server = form.save(commit=False)
            server.tenant_id, server.added_by = tenant, request.user
            if server.register():
                imported += 1
                names.append(server.name)
            else:
                already += 1
        elif "__all__" in form.errors:
            already += 1
        else:
            invalid += 1
    if imported:
        audit.record(request, Action.SERVER_IMPORT, imported=imported, already=already, invalid=invalid,
                     servers=names)
    parts = [f"Imported {imported} server{'s' if imported != 1 else ''}."]
    if already:
        parts.append(f"{already} already registered.")
    if invalid:
        parts.append(f"{invalid} not valid and left out.")
    (messages.success if imported else messages.info)(request, " ".join(parts))
    return redirect("server_list")
