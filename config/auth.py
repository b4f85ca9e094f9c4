"""The logged-in user of a request, read by a statement written out once (issue 16, P2).

Every page a logged-in user opens reads its user after its session. Django's ``ModelBackend``
builds that primary-key lookup through the ORM on each request (about as much CPU as the rest
of the session's load); ``AuthenticationMiddleware`` here sends the same statement ready-made
(``core.sql``) when the session was made by ``ModelBackend``, as every log-in's is (axes'
backend authenticates nobody), and keeps the user only when Django would keep it: the user
exists and may log in (``ModelBackend.user_can_authenticate``) and the session's hash matches
the user's with the current secret key. In every other case (another backend, no hash, a hash
of a fallback key or of a changed password, a deleted or inactive user) Django's own
``get_user`` decides, and flushes or rotates the session as it does.
"""

from functools import cache

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connections, router
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

from core import sql

_MODEL_BACKEND = f"{ModelBackend.__module__}.{ModelBackend.__qualname__}"


@cache
def _user_sql() -> str:
    user_model = auth.get_user_model()
    # The table and columns are the model's own; the key is a parameter.
    return (
        f"SELECT {sql.columns(user_model, 'u')} FROM {user_model._meta.db_table} AS u "  # noqa: S608
        f"WHERE u.{user_model._meta.pk.column} = %s"
    )


def _user_by_sql(request) -> AbstractBaseUser | None:
    """The session's user when Django's checks would keep it, else None (Django decides)."""
    session = request.session
    try:
        backend_path = session[BACKEND_SESSION_KEY]
        user_id = session[SESSION_KEY]
    except KeyError:
        return None
    session_hash = session.get(HASH_SESSION_KEY)
    if (
        backend_path != _MODEL_BACKEND
        or backend_path not in settings.AUTHENTICATION_BACKENDS
        or not session_hash
    ):
        return None
    user_model = auth.get_user_model()
    user_id = user_model._meta.pk.to_python(user_id)
    connection = connections[router.db_for_read(user_model)]
    with connection.cursor() as cursor:
        cursor.execute(_user_sql(), [user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    user = sql.instance(user_model, row)
    if not ModelBackend().user_can_authenticate(user):
        return None
    if not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return None
    return user


def get_user(request) -> AbstractBaseUser | AnonymousUser:
    """``django.contrib.auth.get_user``'s answer, with one statement written out when the
    session is a valid ``ModelBackend`` one; Django's own ``get_user`` otherwise."""
    if not hasattr(request, "_cached_user"):
        request._cached_user = _user_by_sql(request) or auth.get_user(request)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with the user read by ``get_user`` above (``request.auser`` stays Django's)."""

    def process_request(self, request) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: get_user(request))
