"""Registering, importing, archiving and restoring servers, and /healthz. A server's page and the list of
servers are the checks app's (they show each server's checks)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dashboard import audit, entra, import_listing, inventory, registry, subscriptions
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
    """List the flexible servers the user can see in Azure (kept a few minutes: a reload does not ask ARM again),
    the registered ones Azure no longer lists, and register the ones they pick."""
    if request.method == "POST":
        return _import_selected(request)
    listing = inventory.cached_listing(request.user)
    error = None
    if listing is None:
        token = entra.arm_token(request.user)
        if token.access_token is None:
            if not token.interaction_required:
                messages.error(request, token.error_description or "Entra ID could not be reached.")
                return redirect("server_list")
            return sign_in_again(request, next_url=reverse("server_import"))
        tokens = entra.token_source(request.user, first=token)
        try:
            listing = inventory.fresh_listing(tokens, request.user, subscriptions.refresh(tokens, request.user))
        except inventory.InventoryError as exc:
            error = exc
    search = request.GET.get("q", "").strip()[:100]
    compared = (import_listing.compare(listing, request.user.tenant_id, search=search,
                                       cap=settings.IMPORT_MAX_PER_POST) if listing is not None else None)
    return render(request, "dashboard/server_import.html", {
        "compared": compared, "error": error, "search": search, "shown": import_listing.SHOWN,
        "fetched_at": listing.fetched_at if listing else None, "cap": settings.IMPORT_MAX_PER_POST,
        "listed_at": listing.fetched_at.isoformat() if listing else "",
    })


@require_POST
@role_required(ADMIN)
def server_import_refresh(request: HttpRequest) -> HttpResponse:
    """ "Refresh from Azure": drop the kept listing, so the import page lists the fleet from ARM again."""
    inventory.forget_listing(request.user)
    return redirect("server_import")


@require_POST
@role_required(ADMIN)
def server_import_archive(request: HttpRequest) -> HttpResponse:
    """Archive the registered servers Azure no longer lists, as picked on the import page. Only servers the
    user's current listing still shows as gone are archived: a stale page archives nothing Azure lists now."""
    listing = inventory.cached_listing(request.user)
    if listing is None:
        messages.error(request, "The listing from Azure is out of date: look at it again before archiving.")
        return redirect("server_import")
    picked = {int(pk) for pk in request.POST.getlist("server") if pk.isascii() and pk.isdigit()}
    gone = picked & import_listing.orphan_ids(listing, request.user.tenant_id)
    archived, busy = [], []
    for server in Server.objects.filter(pk__in=gone).select_related("last_check").order_by("pk"):
        if server.archive():
            archived.append(server.name)
            audit.record(request, Action.SERVER_ARCHIVE, server, why="no longer listed by Azure")
        else:
            busy.append(server.name)
    if archived:
        messages.success(request, f"Archived {len(archived)} server{'s' if len(archived) != 1 else ''} Azure no "
                                  "longer lists. Their history is kept; each can be restored from its page.")
    if busy:
        messages.error(request, f"Not archived while a check is in progress: {', '.join(busy)}.")
    if not archived and not busy:
        messages.info(request, "Nothing was archived: pick servers Azure no longer lists.")
    return redirect("server_import")


def _import_selected(request: HttpRequest) -> HttpResponse:
    """Register the picked servers in bulk (a few statements per IMPORT_CHUNK, whatever their number), or with
    "Import all", every new server of the kept listing."""
    if "everything" in request.POST:
        return _import_everything(request, request.POST["everything"])
    values = request.POST.getlist("server")
    if not values:
        messages.info(request, "Nothing was imported: pick servers to import, or use “Import all”.")
        return redirect("server_import")
    cap = settings.IMPORT_MAX_PER_POST
    wanted, invalid = registry.parse_picks(values[:cap])
    names, already = registry.register_many(wanted, tenant_id=request.user.tenant_id, added_by=request.user)
    if names:
        audit.record(request, Action.SERVER_IMPORT, imported=len(names), already=already, invalid=invalid,
                     servers=names)
    parts = _imported_words(len(names), already, invalid)
    if len(values) > cap:
        parts.append(f"One import takes at most {cap} servers: the other {len(values) - cap} picked were left out "
                     "and are offered again on the import page.")
    (messages.success if names else messages.info)(request, " ".join(parts))
    return redirect("server_list")


def _import_everything(request: HttpRequest, scope: str) -> HttpResponse:
    """ "Import all": every new server of the user's kept listing (or of the one subscription `scope` names), as
    the page counted them, an import's worth at a time, each its own audit event (none lists more than an import).
    The listing must still be the one the page was drawn from: a refresh in another tab changes what "all" is."""
    listing = inventory.cached_listing(request.user)
    if listing is None or request.POST.get("listed_at") != listing.fetched_at.isoformat():
        messages.error(request, "The listing from Azure is out of date or changed since this page was drawn: look "
                                "at it again before importing.")
        return redirect("server_import")
    scope = scope.lower()
    if scope != "all" and scope not in import_listing.subscription_ids(listing):
        messages.error(request, "That subscription is not in your listing from Azure: nothing was imported.")
        return redirect("server_import")
    tenant_id, cap = request.user.tenant_id, settings.IMPORT_MAX_PER_POST
    picks = import_listing.new_servers(listing, tenant_id, "" if scope == "all" else scope)
    if not picks:
        messages.info(request, "Nothing new to import: every server Azure lists there is registered already.")
        return redirect("server_import")
    imported, already = 0, 0
    for start in range(0, len(picks), cap):
        names, registered = registry.register_many(picks[start:start + cap], tenant_id=tenant_id,
                                                   added_by=request.user)
        imported, already = imported + len(names), already + registered
        if names:
            audit.record(request, Action.SERVER_IMPORT, imported=len(names), already=registered, invalid=0,
                         servers=names)
    (messages.success if imported else messages.info)(request, " ".join(_imported_words(imported, already, 0)))
    return redirect("server_list")


def _imported_words(imported: int, already: int, invalid: int) -> list[str]:
    parts = [f"Imported {imported} server{'s' if imported != 1 else ''}."]
    if already:
        parts.append(f"{already} already registered.")
    if invalid:
        parts.append(f"{invalid} not valid and left out.")
    return parts
