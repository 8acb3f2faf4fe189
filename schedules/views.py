"""The schedules pages: list, create, edit, pause, resume, run now, delete.

Everyone in a tenant sees the tenant's schedules; only a schedule's owner changes, runs or deletes it,
because it runs with the owner's Azure sign-in (nobody acts with another person's token).
"""

from functools import wraps

from django.contrib import messages
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checks.models import QueueRefused
from dashboard import audit, entra
from dashboard.audit import Action
from dashboard.auth_views import sign_in_again
from dashboard.roles import OPERATOR, role_required
from schedules.firing import queue_checks_as, record_run
from schedules.forms import ScheduleForm
from schedules.models import Schedule


def owner_only(view):
    """The tenant's schedule `pk` (404 for another tenant's), for its owner only (403 for anyone else), while
    they hold the operator role."""

    @role_required(OPERATOR)
    @wraps(view)
    def wrapper(request: HttpRequest, pk: int) -> HttpResponse:
        schedule = get_object_or_404(
            Schedule.objects.for_tenant(request.user.tenant_id).select_related("owner", "last_batch"), pk=pk
        )
        if schedule.owner_id != request.user.pk:
            message = (f"Only the schedule's owner, {schedule.owner}, can change, run or delete it: it runs with "
                       "their Azure sign-in, and nobody acts with another person's.")
            return render(request, "403.html", {"message": message}, status=403)
        return view(request, schedule)

    return wrapper


def _row(schedule: Schedule) -> dict:
    return {"schedule": schedule, "server_count": schedule.servers().count()}


def _row_or_list(request: HttpRequest, schedule: Schedule, message: str) -> HttpResponse:
    """htmx gets the schedule's row back; a plain form post goes back to the list with a message."""
    if request.htmx:
        schedule.refresh_from_db()
        return render(request, "schedules/list.html#schedule-row", {**_row(schedule), "notice": message})
    messages.success(request, message)
    return redirect("schedule_list")


@require_GET
def schedule_list(request: HttpRequest) -> HttpResponse:
    schedules = Schedule.objects.for_tenant(request.user.tenant_id).select_related("owner", "last_batch")
    rows = [_row(s) for s in schedules.order_by(Lower("name"), "pk")]
    return render(request, "schedules/list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def schedule_create(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        schedule = form.save()
        audit.record(request, Action.SCHEDULE_CREATE, schedule, cadence=schedule.cadence_words)
        messages.success(request, f"Schedule “{schedule.name}” created; it runs {schedule.cadence_words}.")
        return redirect("schedule_list")
    status = 400 if form.is_bound else 200
    return render(request, "schedules/form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@owner_only
def schedule_edit(request: HttpRequest, schedule: Schedule) -> HttpResponse:
    form = ScheduleForm(request.POST or None, instance=schedule, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        audit.record(request, Action.SCHEDULE_EDIT, schedule, changed=form.changed_data,
                     cadence=schedule.cadence_words)
        messages.success(request, f"Schedule “{schedule.name}” saved.")
        return redirect("schedule_list")
    status = 400 if form.is_bound else 200
    return render(request, "schedules/form.html", {"form": form, "schedule": schedule}, status=status)


@require_POST
@owner_only
def schedule_pause(request: HttpRequest, schedule: Schedule) -> HttpResponse:
    Schedule.objects.filter(pk=schedule.pk).update(state=Schedule.State.PAUSED)
    audit.record(request, Action.SCHEDULE_PAUSE, schedule)
    return _row_or_list(request, schedule, f"“{schedule.name}” is paused.")


@require_POST
@owner_only
def schedule_resume(request: HttpRequest, schedule: Schedule) -> HttpResponse:
    """Active again, from its next slot after now (missed slots are not made up)."""
    if schedule.owner_must_sign_in:
        return _sign_in_again(request)
    now = timezone.now()
    next_run = schedule.next_run_after(now, anchor=schedule.next_run_at)
    Schedule.objects.filter(pk=schedule.pk).update(state=Schedule.State.ACTIVE, next_run_at=next_run)
    audit.record(request, Action.SCHEDULE_RESUME, schedule)
    return _row_or_list(request, schedule, f"“{schedule.name}” is active again.")


@require_POST
@owner_only
def schedule_run_now(request: HttpRequest, schedule: Schedule) -> HttpResponse:
    """Queue a batch of the schedule's servers now, as its owner; its cadence does not move."""
    if entra.arm_token(request.user).interaction_required:
        return _sign_in_again(request)
    servers = list(schedule.servers())
    if not servers:
        messages.error(request, "No registered server matches this schedule; nothing was checked.")
        return redirect("schedule_list")
    try:
        batch = queue_checks_as(request.user, servers)
    except QueueRefused as refused:
        messages.error(request, refused.message)
        return redirect("schedule_list")
    record_run(schedule, batch, timezone.now())
    audit.record(request, Action.SCHEDULE_RUN, schedule, batch=batch.pk, servers=len(servers))
    return redirect("batch_detail", pk=batch.pk)


@require_POST
@owner_only
def schedule_delete(request: HttpRequest, schedule: Schedule) -> HttpResponse:
    audit.record(request, Action.SCHEDULE_DELETE, schedule)
    schedule.delete()
    messages.success(request, f"Schedule “{schedule.name}” deleted; its batches stay in the history.")
    return redirect("schedule_list")


def _sign_in_again(request: HttpRequest) -> HttpResponse:
    """The owner's token needs them: sign in again (which also re-activates their stopped schedules)."""
    return sign_in_again(request, next_url=reverse("schedule_list"))
