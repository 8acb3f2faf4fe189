"""The server list with each server's check state, a server's page with its history, and running a check
(re-running it after a sign-in Azure asked for goes through checks.resume)."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from checks import fleet_read, fleet_state, history_row, resume, strip
from checks.forms import RunCheckForm
from checks.models import AlreadyActive, Check, ReadinessChange, TooManyActive, proposed_backup_name
from checks.readiness import unknown_words
from checks.views.history import get_check_for_user, poll_response
from dashboard import audit, entra, keyset
from dashboard.audit import Action
from dashboard.auth_views import sign_in_again
from dashboard.models import Server
from dashboard.roles import OPERATOR, role_required
from dashboard.views import get_server_for_user

HISTORY_PER_PAGE = 25


def server_row_context(request: HttpRequest, server: Server, form: RunCheckForm | None = None,
                       notice: str = "", *, with_strip: bool = True) -> dict:
    """One server's row: the same on the list and on the server's page (without the checkbox and link)."""
    query = request.GET if request.method == "GET" else request.POST
    server = fleet_read.servers([server.pk], request.user)[0]
    return {
        "server": server,
        "my_last_attempt": fleet_state.my_last_attempt_note(server),
        # The backup name is chosen on the server's page alone (the list's "Run" posts none: the proposed one).
        "run_form": form or RunCheckForm(initial={"backup_name": proposed_backup_name(server.name)}),
        "notice": notice,
        "on_detail": "on_detail" in query,
        "strip": strip.strip_of(server) if with_strip else None,
        "unknown": unknown_words(server.last_check_id is not None),  # what a server without a readiness says
    }


@require_GET
def server_list(request: HttpRequest) -> HttpResponse:
    """The list; htmx asks for the counts at the top alone when a check finishes."""
    form, _, selected, counts = fleet_state.counted_servers(request, request.GET)
    context = {"form": form, "counts": counts}
    if request.htmx:
        return render(request, "checks/server_list.html#fleet-counts", context)
    page, servers = fleet_state.page_of_servers(selected, request, fleet_state.counted_total(form, counts))
    filters = request.GET.copy()
    filters.pop("page", None)
    rows = [{"server": s, "strip": strip.strip_of(s), "my_last_attempt": fleet_state.my_last_attempt_note(s)}
            for s in servers]
    context |= {"rows": rows, "page": page, "query": filters.urlencode(), "filtered": bool(filters.keys() - {"sort"}),
                "sort": fleet_state.sort_of(request.GET), "sorts": fleet_state.sort_links(filters),
                "strip_legend": strip.legend()}
    return render(request, "checks/server_list.html", context)


@require_GET
def server_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The server's row on the list, polled by htmx while its check is queued or running."""
    server = get_server_for_user(request, pk)
    context = server_row_context(request, server)
    # Screen readers hear the result once, when the poll brings the finished row.
    context["announce"] = server.last_check is not None and not server.last_check.is_active
    response = render(request, "checks/server_list.html#server-row", context)
    return poll_response(response, server.last_check)


@require_GET
def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A server's page; htmx asks for its history alone when a check of it is queued, and for its readiness
    alone when one finishes."""
    server = get_server_for_user(request, pk, active_only=False)
    template_name = "checks/server_detail.html"
    if request.htmx and request.GET.get("part") == "readiness":
        return render(request, template_name + "#readiness",
                      {"server": server, "timeline": ReadinessChange.timeline(server)})
    checks = Check.objects.filter(server=server)
    page = keyset.paginate(history_row.read(checks), HISTORY_PER_PAGE, request.GET.get("cursor"),
                           counted=checks.order_by())
    if request.htmx:
        return render(request, template_name + "#history", {"server": server, "page": page})
    context = server_row_context(request, server, with_strip=False)
    return render(request, template_name, {**context, "page": page, "timeline": ReadinessChange.timeline(server)})


@require_POST
@role_required(OPERATOR)
def run(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a check of one server. htmx gets the server's row back; a plain form post is redirected."""
    server = get_server_for_user(request, pk)
    form = RunCheckForm(request.POST, server=server)
    if not form.is_valid():
        return _refuse_backup_name(request, server, form)
    if entra.arm_token(request.user).interaction_required:
        # Azure wants the user back (expired or revoked sign-in, consent, MFA): sign in, then run this check.
        return _sign_in_then_run(request, server, form.cleaned_data["backup_name"])
    notice = ""
    try:
        check = Check.objects.queue(server, request.user, form.cleaned_data["backup_name"])
        audit.record(request, Action.CHECK_RUN, server, check=check.pk, backup_name=check.backup_name)
    except AlreadyActive:
        notice = "A check of this server is already in progress; it was not started twice."
    except TooManyActive as refused:
        notice = refused.message
    if not request.htmx:
        if notice:
            messages.info(request, notice)
        return redirect("server_detail", pk=server.pk)
    response = render(request, "checks/server_list.html#server-row", server_row_context(request, server, None, notice))
    if not notice:
        # The server page's history listens for this and shows the new check at the top.
        trigger_client_event(response, "check-queued")
    return response


def _refuse_backup_name(request: HttpRequest, server: Server, form: RunCheckForm) -> HttpResponse:
    if not request.htmx:
        messages.error(request, "; ".join(form.errors.get("backup_name", ["Invalid backup name."])))
        return redirect("server_detail", pk=server.pk)
    context = server_row_context(request, server, form)
    return render(request, "checks/server_list.html#server-row", context, status=422)


def _sign_in_then_run(request: HttpRequest, server: Server, backup_name: str, claims: str = "") -> HttpResponse:
    resume.park_run(request, server, backup_name)
    back = request.htmx.current_url_abs_path if request.htmx else reverse("server_detail", args=[server.pk])
    return sign_in_again(request, next_url=back, claims_challenge=claims or None)


@require_POST
@role_required(OPERATOR)
def reauth(request: HttpRequest, pk: int) -> HttpResponse:
    """Sign in again (answering any claims challenge the check recorded), then re-run the check."""
    check = get_check_for_user(request, pk)
    if check.server.archived_at is not None:
        raise Http404
    return _sign_in_then_run(request, check.server, check.backup_name, check.claims_challenge)
