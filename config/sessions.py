"""The session engine: Django's database sessions, read by a statement written out once.

Every page a logged-in user opens reads its session first. Django's ``db`` engine builds that
primary-key lookup through the ORM on each request (about a third of a millisecond of CPU, more
than the database spends on it); this store sends the same statement (the key, not expired)
ready-made. Writing, rotating, flushing and clearing sessions stay Django's own, so a log-out
or ``clearsessions`` ends a session at once, as before: no cache holds one (issue 16, P1).
A session that Django's ``ModelBackend`` logged in is read as ``config.auth.ModelBackend``'s.
"""

from functools import cache
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.utils import timezone

from config.auth import DJANGO_MODEL_BACKEND, MODEL_BACKEND
from core import sql


@cache
def _load_sql() -> str:
    # The table name is the model's own; the key and the time are parameters.
    return (
        f"SELECT session_data FROM {Session._meta.db_table} "  # noqa: S608
        "WHERE session_key = %s AND expire_date > %s"
    )


class SessionStore(db.SessionStore):
    def load(self) -> dict[str, Any]:
        # As Django's load(), but the data alone: no Session instance is made to hold it.
        encoded = self._session_data_from_db()
        data = self.decode(encoded) if encoded is not None else {}
        # Logged in before ``config.auth.ModelBackend`` replaced Django's: the same user, read
        # by the replacement (Django logs out a session whose backend is not configured).
        if data.get(BACKEND_SESSION_KEY) == DJANGO_MODEL_BACKEND:
            data[BACKEND_SESSION_KEY] = MODEL_BACKEND
        return data

    def _session_data_from_db(self) -> str | None:
        """The session's encoded data, as Django's ``_get_session_from_db`` finds the session
        (its key, not expired); None, and no key any more, when there is none."""
        key = self.session_key
        if key is None:  # no cookie, or one that is not a session key (SessionBase checks)
            return None
        using = router.db_for_read(Session)
        now = connections[using].ops.adapt_datetimefield_value(timezone.now())
        # The first statement of a logged-in request: it stands in for Django's health check
        # of a reused connection (a SELECT 1 before it otherwise), replacing a closed one.
        row = sql.fetchone_checking_connection(using, _load_sql(), [key, now])
        if row is None:
            self._session_key = None  # as Django's: a new session replaces an unknown key
            return None
        return row[0]
