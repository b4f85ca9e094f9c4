"""The log-in backend: Django's ``ModelBackend``, with the logged-in user read by a statement
written out once (``core.sql``).

Every page a logged-in user opens reads the user after the session. ``ModelBackend.get_user``
builds that primary-key lookup through the ORM on each request (about 0.2 ms of CPU, more than
the database spends on it; issue 16, P1); this one sends the same statement ready-made and
makes the same instance. Logging in, permissions and the rest are Django's own.

Sessions name the backend that logged their user in: those from before this backend (Django's
``ModelBackend``) are read as this one's (``config.sessions``), so nobody is logged out.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.contrib.auth.models import User
from django.db import connection, router

from core import sql

DJANGO_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
MODEL_BACKEND = "config.auth.ModelBackend"


@cache
def _user_sql() -> str:
    user_model = get_user_model()
    meta, quote = user_model._meta, connection.ops.quote_name
    # The table and the columns are the model's own; the id is a parameter.
    return (
        f"SELECT {sql.columns(user_model, 'u')} FROM {quote(meta.db_table)} AS u "  # noqa: S608
        f"WHERE u.{quote(str(meta.pk.column))} = %s"
    )


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id) -> User | None:
        user_model = get_user_model()
        pk = user_model._meta.pk.to_python(user_id)  # as the ORM takes it (the session's str)
        with sql.prepared_cursor(router.db_for_read(user_model)) as cursor:
            cursor.execute(_user_sql(), [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        user = sql.instance(user_model, row)
        return user if self.user_can_authenticate(user) else None
