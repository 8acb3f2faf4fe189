"""The alerts pages: channels and the delivery log, adding/editing/deleting a channel, the test button.

Every query starts from the signed-in user's tenant; another tenant's ids answer 404.
"""

import math
import secrets

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from alerts import Alert, AlertKind, bursts
from alerts.delivery import delete_channel, queue_delivery
from alerts.forms import ChannelForm
from alerts.models import Channel, Delivery
from dashboard import audit, keyset, ratelimit
from dashboard.audit import Action
from dashboard.roles import ADMIN, role_required

DELIVERIES_PER_PAGE = 25
CURSOR_SALT = "alerts.deliveries.cursor"


def _channel(request: HttpRequest, pk: int) -> Channel:
    return get_object_or_404(Channel.objects.for_tenant(request.user.tenant_id), pk=pk)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    tenant = request.user.tenant_id
    deliveries = Delivery.objects.for_tenant(tenant).select_related("summary").order_by("-created_at", "-id")
    # Keyset pages: a storm adds a row an alert a channel, and OFFSET pages and a full COUNT(*) slow down with them.
    page = keyset.paginate(deliveries, DELIVERIES_PER_PAGE, request.GET.get("cursor"), salt=CURSOR_SALT,
                           noun="delivery", counted=Delivery.objects.for_tenant(tenant))
    return render(request, "alerts/index.html", {
        "channels": Channel.objects.for_tenant(tenant), "page": page, "deliveries": page.object_list,
        "burst": {"limit": settings.ALERT_BURST_LIMIT, "window": bursts.window_words()},
        "retention_days": settings.ALERT_LOG_RETENTION_DAYS,
    })


@sensitive_post_parameters("target")  # Slack and Teams URLs are credentials: kept out of error reports
@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def channel_add(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None, tenant_id=request.user.tenant_id)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        channel = Channel(tenant_id=request.user.tenant_id, name=data["name"], kind=data["kind"],
                          enabled=data["enabled"], created_by=request.user)
        channel.set_target(data["target"], data["hint"])
        secret = ""
        if channel.kind == Channel.Kind.WEBHOOK:
            secret = secrets.token_urlsafe(32)
            channel.set_secret(secret)
        channel.save()
        audit.record(request, Action.CHANNEL_CREATE, channel, kind=channel.kind, enabled=channel.enabled)
        if secret:  # shown on this page once; never again, and never through a cookie or a redirect
            response = render(request, "alerts/channel_created.html", {"channel": channel, "secret": secret})
            response["Cache-Control"] = "no-store"
            return response
        messages.success(request, f"Added the channel {channel.name}.")
        return redirect("alerts:index")
    status = 400 if request.method == "POST" else 200
    return render(request, "alerts/channel_form.html", {"form": form}, status=status)


@sensitive_post_parameters("target")
@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    initial = {"name": channel.name, "kind": channel.kind, "enabled": channel.enabled}
    form = ChannelForm(request.POST or None, initial=initial, tenant_id=request.user.tenant_id, channel=channel)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        channel.name, channel.enabled = data["name"], data["enabled"]
        if data.get("target"):
            channel.set_target(data["target"], data["hint"])
        channel.save()
        # Which fields changed, never their values: a target URL can be a credential.
        audit.record(request, Action.CHANNEL_EDIT, channel, changed=form.changed_data, enabled=channel.enabled)
        messages.success(request, f"Saved the channel {channel.name}.")
        return redirect("alerts:index")
    status = 400 if request.method == "POST" else 200
    return render(request, "alerts/channel_form.html", {"form": form, "channel": channel}, status=status)


@require_POST
@role_required(ADMIN)
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    delete_channel(channel)
    audit.record(request, Action.CHANNEL_DELETE, channel, kind=channel.kind)  # once it is done
    messages.success(request, f"Deleted the channel {channel.name}; its deliveries stay in the log.")
    return redirect("alerts:index")


@require_POST
@role_required(ADMIN)
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """A test message through the same path as a real alert: a Delivery, the queue, the worker."""
    channel = _channel(request, pk)
    wait = ratelimit.hit(f"alert-test:{channel.tenant_id}", settings.ALERT_TESTS_PER_HOUR, 3600)
    if wait is not None:
        refusal = (f"This tenant has sent {settings.ALERT_TESTS_PER_HOUR} test messages this hour; the next can go "
                   f"in {math.ceil(wait / 60)} min.")
        if request.htmx:
            return HttpResponse(refusal, status=429, content_type="text/plain",
                                headers={"Retry-After": str(math.ceil(wait))})
        messages.error(request, refusal)
        return redirect("alerts:index")
    alert = Alert(
        tenant_id=channel.tenant_id, kind=AlertKind.TEST, title=f"Test message for {channel.name}",
        text=f"{request.user} sent this from the LTR pre-backup dashboard to check the channel works.",
        url=request.build_absolute_uri(reverse("alerts:index")),
        facts={"Channel": channel.name, "Sent by": str(request.user)},
    )
    queue_delivery(channel, alert)
    audit.record(request, Action.CHANNEL_TEST, channel)
    if request.htmx:  # the log's first page, the new delivery on top, polling until it is sent or failed
        newest = (Delivery.objects.for_tenant(channel.tenant_id).select_related("summary")
                  .order_by("-created_at", "-pk")[:DELIVERIES_PER_PAGE])
        return render(request, "alerts/index.html#delivery-log", {"deliveries": newest})
    messages.info(request, f"Test message to {channel.name} queued; its outcome appears in the delivery log.")
    return redirect("alerts:index")


@require_GET
def delivery_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One row of the delivery log, polled by htmx while the delivery is queued."""
    delivery = get_object_or_404(Delivery.objects.for_tenant(request.user.tenant_id).select_related("summary"), pk=pk)
    response = render(request, "alerts/index.html#delivery-row",
                      {"delivery": delivery, "announce": not delivery.is_queued})
    if not delivery.is_queued:
        trigger_client_event(response, "delivery-finished")
    return response
