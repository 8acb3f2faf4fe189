"""What every page's template may use: demo mode, and the tenant's subscription names (read only if used)."""

from django.conf import settings
from django.utils.functional import SimpleLazyObject

from dashboard.subscriptions import names_for


def demo_mode(request):
    return {"demo_mode": settings.DEMO_MODE}


def subscription_names(request):
    """The tenant's subscription names, read (one query) only if the page shows a subscription."""
    return {"subscription_names": SimpleLazyObject(lambda: names_for(request))}
