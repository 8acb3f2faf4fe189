"""An htmx request whose session has ended is sent to sign in with a full-page redirect.

Without this, htmx would follow the 302 to the sign-in page inside an XHR and swap the identity
provider's page into a table row.
"""

from urllib.parse import urlparse

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


class HtmxSignInRedirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "htmx", False) and response.status_code == 302:
            login_path = resolve_url(settings.LOGIN_URL)
            if urlparse(response["Location"]).path == login_path:
                # Come back to the page the user was on, not to the fragment htmx asked for.
                current = urlparse(request.htmx.current_url or "/")
                back = current.path + (f"?{current.query}" if current.query else "")
                from django.utils.http import urlencode

                return HttpResponseClientRedirect(f"{login_path}?{urlencode({'next': back})}")
        return response
