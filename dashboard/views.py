"""The fleet pages: the server list, registering and archiving a server, a server's page, and /healthz."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checks.models import Check
from checks.views import poll_response
from dashboard import entra, fleet, inventory
from dashboard.auth_views import sign_in_again
from dashboard.forms import ServerForm
from dashboard.models import Server


def _get_server_for_user(request: HttpRequest, pk: int, *, active_only: bool = True) -> Server:
    servers = Server.objects.for_tenant(request.user.tenant_id).select_related("last_check")
    if active_only:
        servers = servers.active()
    return get_object_or_404(servers, pk=pk)


SERVERS_PER_PAGE = 100


@require_GET
def server_list(request: HttpRequest) -> HttpResponse:
    form, everything, selected = fleet.filtered_servers(request, request.GET)
    page = Paginator(selected.for_list(), SERVERS_PER_PAGE).get_page(request.GET.get("page"))
    servers = list(page.object_list)
    strips = fleet.recent_outcomes([s.pk for s in servers])
    rows = [{**fleet.server_row_context(server), "strip": strips[server.pk]} for server in servers]
    filters = request.GET.copy()
    filters.pop("page", None)
    query = filters.urlencode()
    return render(
        request,
        "dashboard/server_list.html",
        {"rows": rows, "page": page, "form": form, "counts": fleet.counts(everything), "total": everything.count(),
         "query": query, "filtered": bool(query)},
    )


@require_GET
def server_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The server's row on the list, polled by htmx while its check is queued or running."""
    server = _get_server_for_user(request, pk)
    context = {
        **fleet.server_row_context(server, request=request),
        "strip": fleet.recent_outcomes([server.pk])[server.pk],
        # Screen readers hear the result once, when the poll brings the finished row.
        "announce": server.last_check is not None and not server.last_check.is_active,
    }
    response = render(request, "dashboard/server_list.html#server-row", context)
    return poll_response(response, server.last_check)


@require_http_methods(["GET", "POST"])
def server_add(request: HttpRequest) -> HttpResponse:
    form = ServerForm(request.POST or None, tenant_id=request.user.tenant_id)
    if request.method == "POST" and form.is_valid():
        server = form.save(commit=False)
        server.tenant_id = request.user.tenant_id
        server.added_by = request.user
        if _register(server):
            messages.success(request, f"Registered {server.name}.")
            return redirect("server_list")
        form.add_error(None, "This server is already registered (names are compared without regard to case).")
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboard/server_form.html", {"form": form}, status=status)


def _register(server: Server) -> bool:
    """Save a registration; False if another request registered the same server a moment before (the
    form checked, but two clicks can pass that check together; the unique index decides).

    A server registered before and archived comes back with its history rather than as a stranger.
    """
    archived = (
        Server.objects.for_tenant(server.tenant_id)
        .filter(archived_at__isnull=False)
        .matching(server.subscription_id, server.resource_group, server.name)
        .order_by("-archived_at")
        .first()
    )
    try:
        with transaction.atomic():
            if archived is not None:
                archived.archived_at = None
                archived.label = server.label or archived.label
                archived.save(update_fields=["archived_at", "label"])
                server.pk = archived.pk
            else:
                server.save()
    except IntegrityError:
        return False
    return True


@require_GET
def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    server = _get_server_for_user(request, pk, active_only=False)
    checks = Check.objects.filter(server=server).for_history()
    page = Paginator(checks, 25).get_page(request.GET.get("page"))
    context = {**fleet.server_row_context(server), "page": page}
    return render(request, "dashboard/server_detail.html", context)


@require_POST
def server_archive(request: HttpRequest, pk: int) -> HttpResponse:
    server = _get_server_for_user(request, pk)
    if server.active_check is not None:
        messages.error(request, f"{server.name} has a check in progress; archive it when the check ends.")
        return redirect("server_detail", pk=server.pk)
    server.archived_at = timezone.now()
    server.save(update_fields=["archived_at"])
    messages.success(request, f"Archived {server.name}. Its history is kept; restore it from its page "
                              "or by registering it again.")
    return redirect("server_list")


@require_POST
def server_restore(request: HttpRequest, pk: int) -> HttpResponse:
    server = _get_server_for_user(request, pk, active_only=False)
    try:
        with transaction.atomic():
            Server.objects.filter(pk=server.pk).update(archived_at=None)
    except IntegrityError:  # registered again meanwhile as a new entry
        messages.error(request, f"{server.name} is registered already; this archived entry stays archived.")
        return redirect("server_detail", pk=pk)
    messages.success(request, f"Restored {server.name}; its history is back on the list.")
    return redirect("server_detail", pk=pk)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
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
    registered = {
        (s.subscription_id.lower(), s.resource_group.lower(), s.name.lower())
        for s in Server.objects.for_tenant(request.user.tenant_id).active()
    }
    groups, error = [], None
    user = request.user

    def tokens(claims: str | None) -> entra.TokenAnswer:
        return token if claims is None else entra.arm_token(user, claims_challenge=claims)

    try:
        for subscription in inventory.subscriptions(tokens, user.object_id, user.tenant_id):
            try:
                found = inventory.flexible_servers(tokens, user.object_id, subscription.id)
                groups.append({"subscription": subscription, "error": None, "servers": [
                    {"server": s, "registered": (s.subscription_id, s.resource_group.lower(), s.name.lower())
                     in registered} for s in found]})
            except inventory.InventoryError as exc:
                groups.append({"subscription": subscription, "error": exc, "servers": []})
    except inventory.InventoryError as exc:
        error = exc
    importable = sum(not row["registered"] for group in groups for row in group["servers"])
    return render(request, "dashboard/server_import.html", {"groups": groups, "error": error, "importable": importable})


def _import_selected(request: HttpRequest) -> HttpResponse:
    imported = already = invalid = 0
    tenant = request.user.tenant_id
    for value in request.POST.getlist("server")[:5000]:
        subscription_id, _, rest = value.partition("|")
        resource_group, _, name = rest.partition("|")
        form = ServerForm({"subscription_id": subscription_id, "resource_group": resource_group, "name": name},
                          tenant_id=tenant)
        if form.is_valid():
            server = form.save(commit=False)
            server.tenant_id, server.added_by = tenant, request.user
            if _register(server):
                imported += 1
            else:
                already += 1
        elif "__all__" in form.errors:
            already += 1
        else:
            invalid += 1
    parts = [f"Imported {imported} server{'s' if imported != 1 else ''}."]
    if already:
        parts.append(f"{already} already registered.")
    if invalid:
        parts.append(f"{invalid} not valid and left out.")
    (messages.success if imported else messages.info)(request, " ".join(parts))
    return redirect("server_list")
