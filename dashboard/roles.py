"""Who may do what inside a tenant: roles from the app roles of the Entra ID app registration.

The ID token's `roles` claim lists the app roles the user is assigned (README, "Roles"). Three matter here,
each including the ones below it:

- viewer (`Dashboard.Viewer`): browse every page of the tenant and export the history;
- operator (`Dashboard.Operator`): also run checks and batches, re-run, cancel their own batches, and keep
  their own schedules;
- admin (`Dashboard.Admin`): also register, import, archive and restore servers, configure alert channels,
  cancel anyone's batch, and read the audit trail.

The rule, decided once here:
1. the ID token has app roles: they decide, and values we do not know grant nothing;
2. it has none, and the tenant uses app roles (someone of the tenant signed in with one) or
   `APP_ROLES_REQUIRED` is on: no role, so no page at all but the one that says so;
3. it has none, and nobody of the tenant ever signed in with one: every role, as before roles existed
   (the account menu says so).

Roles are read at each sign-in and stored on the user, so nothing here costs a query per request. What a user
may do in Azure stays Azure's decision: every ARM call carries the user's own token.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
EVERY_ROLE = frozenset({VIEWER, OPERATOR, ADMIN})
# The app role values (case-insensitive) in the app registration's manifest, and what each grants.
APP_ROLE_VALUES = {
    "dashboard.viewer": frozenset({VIEWER}),
    "dashboard.operator": frozenset({VIEWER, OPERATOR}),
    "dashboard.admin": EVERY_ROLE,
}
ROLE_NAMES = {VIEWER: "Viewer", OPERATOR: "Operator", ADMIN: "Admin"}
# Enough of a `roles` claim to judge it; more values, or longer ones, are not ours.
MAX_STORED_ROLES, MAX_ROLE_LENGTH = 20, 100


def from_claims(claims: dict) -> list[str]:
    """The app role values of an ID token's claims, as stored on the user (bounded; never trusted as more)."""
    raw = claims.get("roles")
    if not isinstance(raw, list):
        return []
    return [value[:MAX_ROLE_LENGTH] for value in raw if isinstance(value, str) and value][:MAX_STORED_ROLES]


def roles_of(user) -> frozenset:
    """The roles `user` holds (see the module's rule)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    if user.entra_roles:
        return frozenset().union(*(APP_ROLE_VALUES.get(value.lower(), ()) for value in user.entra_roles))
    if user.tenant_uses_app_roles or settings.APP_ROLES_REQUIRED:
        return frozenset()
    return EVERY_ROLE


def app_roles_in_use(user) -> bool:
    """False while the user's tenant keeps the everyone-does-everything default (rule 3)."""
    return bool(user.entra_roles or user.tenant_uses_app_roles or settings.APP_ROLES_REQUIRED)


def has_role(user, role: str) -> bool:
    return role in roles_of(user)


def forbidden(request: HttpRequest, role: str | None, why: str = "") -> HttpResponse:
    """The project's 403 page, saying which role is needed (and `why`, when it is not the role alone)."""
    held = roles_of(request.user)
    mine = ", ".join(ROLE_NAMES[r] for r in (VIEWER, OPERATOR, ADMIN) if r in held) or "none"
    if why:
        message = f"{why} Your roles: {mine}."
    elif role is None:
        message = ("You have no role in this dashboard. Ask your tenant's administrator to assign you one of its "
                   "app roles in Entra ID (Dashboard.Viewer, Dashboard.Operator or Dashboard.Admin), then sign in "
                   "again.")
    else:
        message = (f"This needs the {ROLE_NAMES[role]} role (the app role Dashboard.{ROLE_NAMES[role]} in Entra ID, "
                   f"or one above it). Your roles: {mine}. Ask your tenant's administrator, then sign in again.")
    return render(request, "403.html", {"message": message, "needed_role": role}, status=403)


def role_required(role: str):
    """The view is for users holding `role`; anyone else gets the 403 page that names it."""

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not has_role(request.user, role):
                return forbidden(request, role)
            return view(request, *args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorator


# Every personal Microsoft account signs in with this one tenant id: as a tenant here, strangers would share it.
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def tenant_refusal(tenant_id: str) -> str:
    """Why this tenant may not use the dashboard (ALLOWED_TENANT_IDS; personal accounts never), or "" when it may.
    Asked at sign-in, on every request of an open session, and before a schedule runs as its owner."""
    if tenant_id.lower() == CONSUMER_TENANT:
        return "Personal Microsoft accounts cannot sign in here: use your work or school account."
    if settings.ALLOWED_TENANT_IDS and tenant_id.lower() not in settings.ALLOWED_TENANT_IDS:
        return (f"Your organization (tenant {tenant_id}) is not one this dashboard serves. Ask the people who run it "
                "to add it, or sign in with an account of an organization it serves.")
    return ""


# Signed-in users without any role may still sign out (and see that they did).
NO_ROLE_NEEDED = frozenset({"signout", "signed_out", "admin_logout"})


class RoleRequiredMiddleware:
    """Every page a signed-in user reaches needs at least the viewer role, so a new view cannot forget it.

    Public views (`login_not_required`) and sign-out are exempt; the Django admin has its own gate (is_staff).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True) or not request.user.is_authenticated:
            return None
        match = request.resolver_match
        if match is not None and (match.url_name in NO_ROLE_NEEDED or match.app_name == "admin"):
            return None
        if refusal := tenant_refusal(request.user.tenant_id):  # taken off ALLOWED_TENANT_IDS since signing in
            logout(request)
            return render(request, "auth/failed.html", {
                "title": "This organization cannot use this dashboard", "message": refusal}, status=403)
        if not has_role(request.user, VIEWER):
            return forbidden(request, None)
        return None
