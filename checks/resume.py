"""Re-running a check after the sign-in Azure asked for.

A run that needs the user back at Entra ID is parked in their session; once Django's login() has signed
them in again (the `user_logged_in` signal, so the sign-in code needs to know nothing of checks), it is
queued once and removed, so a replayed callback queues nothing. A different user signing in starts from a
fresh session (login() flushes it) and finds nothing parked.
"""

import time

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from checks.models import AlreadyActive, Check, TooManyActive
from dashboard import audit
from dashboard.audit import Action
from dashboard.models import Server
from dashboard.roles import OPERATOR, has_role

PENDING_RUN_KEY = "checks_pending_run"
# As long as a sign-in may take (dashboard.auth_views' flow age); an abandoned one does not run later.
PENDING_RUN_MAX_AGE_SECONDS = 15 * 60


def park_run(request: HttpRequest, server: Server, backup_name: str) -> None:
    request.session[PENDING_RUN_KEY] = {"server": server.pk, "backup_name": backup_name, "at": time.time()}


@receiver(user_logged_in, dispatch_uid="checks.resume_parked_run")
def resume_parked_run(sender, request: HttpRequest | None, user, **kwargs) -> None:
    pending = request.session.pop(PENDING_RUN_KEY, None) if request is not None else None
    if pending is None or time.time() - pending.get("at", 0) > PENDING_RUN_MAX_AGE_SECONDS:
        return
    if not has_role(user, OPERATOR):  # the roles this very sign-in brought (dashboard.auth_views)
        messages.error(request, "Signed in again, but the check was not run: it needs the Operator role.")
        return
    server = Server.objects.for_tenant(user.tenant_id).active().filter(pk=pending["server"]).first()
    if server is None:  # archived meanwhile
        return
    try:
        check = Check.objects.queue(server, user, pending["backup_name"])
        audit.record(request, Action.CHECK_RUN, server, user=user, check=check.pk, backup_name=check.backup_name,
                     after_sign_in=True)
    except AlreadyActive:
        messages.info(request, f"A check of {server.name} is already in progress.")
    except TooManyActive as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, f"Signed in again; the check of {server.name} is running.")
