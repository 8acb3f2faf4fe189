"""The real URLs plus one view that crashes with a token in its message: what a library bug would log."""

from django.urls import path

from config.urls import urlpatterns as real

LEAKY_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFreS10ZXN0In0.c2lnbmF0dXJlLXRoYXQtbGVha3M"


def crash(request):
    raise RuntimeError(f"upstream said: Authorization: Bearer {LEAKY_JWT} refresh_token=0.AAAAleakyrefresh")


urlpatterns = [*real, path("crash/", crash)]
