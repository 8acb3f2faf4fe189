"""Each user's MSAL token cache, kept server-side in the database and encrypted at rest.

The cache holds the user's refresh token, so it never goes into a cookie, a log or a task argument. It is
encrypted with Fernet under TOKEN_CACHE_KEYS (the first key encrypts, all keys decrypt: put a new key
first to rotate, then run `manage.py rotate_token_cache_keys`). Both the web process and the task workers
read it; it is written back only when MSAL changed it.

Two processes may refresh the same user's tokens at once (two workers, or a worker and a page). No lock
is held across the call to Entra ID; instead each write is a compare-and-swap on `version`: the loser
keeps its freshly obtained access token for the call at hand and leaves the winner's cache in place. Both
refresh tokens are valid (Entra does not invalidate the old one on refresh), so nothing is lost.
"""

import logging

import msal
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from armclient.onewriter import one_writer
from dashboard.models import TokenCache, User

log = logging.getLogger(__name__)


class UserTokenCache(msal.SerializableTokenCache):
    """An MSAL cache that remembers which stored version it was read from."""

    version: int | None = None


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.TOKEN_CACHE_KEYS])


def encrypt(text: str) -> bytes:
    return _fernet().encrypt(text.encode())


def load(user: User) -> UserTokenCache:
    cache = UserTokenCache()
    row = TokenCache.objects.filter(user=user).only("encrypted", "version").first()
    if row is not None:
        cache.version = row.version
        try:
            cache.deserialize(_fernet().decrypt(bytes(row.encrypted)).decode())
        except InvalidToken:
            # A key was removed from TOKEN_CACHE_KEYS: the user simply signs in again.
            log.warning("Token cache of user %s cannot be decrypted with the configured keys", user.pk)
    return cache


def stored_version(user: User) -> int | None:
    """The version of the user's stored cache (None: none stored), without reading or decrypting the cache."""
    return TokenCache.objects.filter(user=user).values_list("version", flat=True).first()


def save(user: User, cache: msal.SerializableTokenCache, *, force: bool = False) -> bool:
    """Write the cache back if MSAL changed it (or `force`); True when this write won."""
    if not (force or cache.has_state_changed):
        return False
    blob = encrypt(cache.serialize())
    version = getattr(cache, "version", None)
    with one_writer():  # a check's token renewed in a worker thread: a writer like the checks' own
        won = _write(user, blob, version, force)
    if not won:
        log.info("Token cache of user %s was updated by another process meanwhile; keeping theirs", user.pk)
    cache.has_state_changed = False
    return won


def _write(user: User, blob: bytes, version: int | None, force: bool) -> bool:
    if force:
        # A fresh sign-in wins whatever is stored, and moves the version on (never back to 1): a process still
        # holding an older version must lose its compare-and-swap, not overwrite what the user just answered.
        with transaction.atomic():
            if not TokenCache.objects.filter(user=user).update(encrypted=blob, version=F("version") + 1):
                TokenCache.objects.create(user=user, encrypted=blob, version=1)
        return True
    if version is None:
        try:
            with transaction.atomic():
                TokenCache.objects.create(user=user, encrypted=blob, version=1)
            return True
        except IntegrityError:
            return False
    return bool(TokenCache.objects.filter(user=user, version=version).update(encrypted=blob, version=F("version") + 1))


def forget(user: User) -> None:
    """Sign-out: the stored cache emptied and its version moved on. The row stays: deleted, the next sign-in would
    create it again at version 1, the version a worker's copy of the old session may still hold, and that copy
    (its tokens) would be taken as current (entra._held_for)."""
    blank = encrypt(UserTokenCache().serialize())
    TokenCache.objects.filter(user=user).update(encrypted=blank, version=F("version") + 1)


def holds_tokens(user: User) -> bool:
    """Whether the user's stored cache holds a refresh or an access token (not once they signed out)."""
    cache = load(user)
    return any(next(iter(cache.search(kind)), None) for kind in (msal.TokenCache.CredentialType.REFRESH_TOKEN,
                                                                 msal.TokenCache.CredentialType.ACCESS_TOKEN))


def rotate_all() -> int:
    """Re-encrypt every cache under the first key; returns how many rows were rewritten."""
    fernet = _fernet()
    count = 0
    for row in TokenCache.objects.only("pk", "encrypted").iterator():
        rotated = fernet.rotate(bytes(row.encrypted))
        TokenCache.objects.filter(pk=row.pk).update(encrypted=rotated)
        count += 1
    return count
