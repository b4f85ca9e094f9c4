"""Settings for the test suite: the base settings, faster where nothing tested depends on it.

Selected by pytest (``DJANGO_SETTINGS_MODULE`` in pyproject.toml). Processes the suite starts
itself (Celery workers, fresh interpreters in tests/test_settings.py) use ``config.settings``.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# The base settings default to production; the suite runs the development set-up (make test
# sets it too; this covers a bare `pytest`).
os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: F403 (the base settings, then the test-only changes)
from config.settings import STORAGES

# Password hashing is deliberately slow (PBKDF2); the suite logs in hundreds of users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Uploaded forms never land in the checkout, even in a test that forgets the per-test folder
# (tests/conftest.py gives every test its own): a scratch folder per test process.
_PRIVATE_MEDIA_SCRATCH = tempfile.mkdtemp(prefix="invoice-returns-private-")
atexit.register(shutil.rmtree, _PRIVATE_MEDIA_SCRATCH, ignore_errors=True)
PRIVATE_MEDIA_ROOT = Path(_PRIVATE_MEDIA_SCRATCH)
STORAGES = {
    **STORAGES,
    "private": {
        "BACKEND": "returns.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": _PRIVATE_MEDIA_SCRATCH},
    },
}
