"""Each user's MSAL token cache, kept server-side in the database and encrypted at rest.

The cache holds the user's refresh token, so it never goes into a cookie, a log or a task argument. It is
encrypted with Fernet under TOKEN_CACHE_KEYS (the first key encrypts, all keys decrypt: put a new key
first to rotate). Both the web process and the task worker read it; it is written back only when MSAL
changed it.
"""

import logging

import msal
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction

from dashboard.models import TokenCache, User

log = logging.getLogger(__name__)


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.TOKEN_CACHE_KEYS])


def load(user: User) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    row = TokenCache.objects.filter(user=user).first()
    if row is not None:
        try:
            cache.deserialize(_fernet().decrypt(bytes(row.encrypted)).decode())
        except InvalidToken:
            # A key was removed from TOKEN_CACHE_KEYS: the user simply signs in again.
            log.warning("Token cache of user %s cannot be decrypted with the configured keys", user.pk)
    return cache


def save(user: User, cache: msal.SerializableTokenCache, *, force: bool = False) -> bool:
    """Write the cache back if MSAL changed it; True when it did."""
    if not (force or cache.has_state_changed):
        return False
    blob = _fernet().encrypt(cache.serialize().encode())
    with transaction.atomic():
        TokenCache.objects.update_or_create(user=user, defaults={"encrypted": blob})
    cache.has_state_changed = False
    return True


def forget(user: User) -> None:
    TokenCache.objects.filter(user=user).delete()
