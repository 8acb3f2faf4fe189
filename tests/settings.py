"""Test settings: the production settings in demo mode, with what tests need changed and nothing else.

Tasks go through django-tasks-db's DatabaseBackend as in production; tests run its worker themselves
(`worker` fixture) so they can see a check while it is still queued.
"""

import os
import tempfile

os.environ.setdefault("DEMO_MODE", "1")
os.environ.setdefault("DEBUG", "0")

from config.settings import *  # noqa: E402,F403

# Hashing passwords nobody uses (Entra ID signs people in) should not slow the suite.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The simulator allows loopback redirect URIs; the test client's "testserver" host is not one.
AZURE_REDIRECT_URI = "http://127.0.0.1:8000/auth/callback/"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Retries back off for real; tests keep the waits short.
ARM_BACKOFF_FACTOR = 0.01

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's in-memory database: the worker's threads and the multi-process tests open it
    # with connections of their own, as they would in production.
    # One per test run (pid), so two runs on one machine never share it.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"ltr-dashboard-test-{os.getpid()}.sqlite3")
    }
# Property-based tests post hundreds of forms a minute as one user; tests/test_rate_limit.py sets real limits.
RATE_LIMIT_POSTS_PER_MINUTE = RATE_LIMIT_SIGNINS_PER_MINUTE = 10**6
# Tests that count tasks or ARM requests after a real sign-in would see the names' read too;
# tests/test_subscription_names.py turns it on where it is the subject.
SUBSCRIPTION_NAMES_AT_SIGN_IN = False
