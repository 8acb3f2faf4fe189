"""What every page needs to know: demo mode, and what the signed-in user may do (to hide what they may not)."""

from django.conf import settings

from dashboard import roles as access


def demo_mode(request):
    return {"demo_mode": settings.DEMO_MODE}


def roles(request):
    """`can.operate` and friends for templates; `app_roles_in_use` False says everyone may do everything."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    held = access.roles_of(user)
    return {
        "can": {"view": access.VIEWER in held, "operate": access.OPERATOR in held, "administer": access.ADMIN in held},
        "my_roles": [access.ROLE_NAMES[r] for r in (access.VIEWER, access.OPERATOR, access.ADMIN) if r in held],
        "app_roles_in_use": access.app_roles_in_use(user),
    }
