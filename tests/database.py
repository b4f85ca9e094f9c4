"""The test databases, made fast: migrated once into a template, cloned per xdist worker, and
emptied between transactional tests with DELETE instead of TRUNCATE.

Registered as a pytest plugin in ``tests/conftest.py``; it replaces pytest-django's
``django_db_setup``. What the tests see is unchanged: a PostgreSQL database migrated from the
migrations in the work tree (with what ``post_migrate`` adds), empty again after each
transactional test, dropped at the end of the run.

- **Template.** Migrating takes seconds of CPU per database (Django renders the model state
  migration by migration). The first process of a run that needs it migrates a template,
  ``test_<name>_tpl_<fingerprint>``; every xdist worker then copies it with ``CREATE DATABASE
  … TEMPLATE`` (a fraction of a second). The fingerprint hashes every installed app's
  migration files and Django's version, so a changed or new migration (or a switched branch)
  makes a new template and the next run migrates once again; templates of other fingerprints
  are dropped then. A PostgreSQL advisory lock makes the workers of one run (and runs side by
  side) build it once; it is built under another name and renamed when complete, so an
  interrupted build never leaves a half-migrated template. ``--create-db`` rebuilds it.
- **Emptying.** After a transactional test (``transaction=True``, ``live_server``) Django runs
  ``flush``: one ``TRUNCATE`` of every table, which costs PostgreSQL a new file per table and
  index (0.2-1 s a test on a busy machine). ``DELETE FROM`` each table in one transaction
  empties the same (nearly empty) tables in milliseconds. Sequences are not reset either way.
  The append-only triggers (``invoices`` migrations 0002, 0008) refuse DELETE, as they should
  in production; the flush runs with ``session_replication_role = replica`` for its own
  transaction (no triggers, no foreign-key checks: every table is emptied together), which
  needs a superuser, as ``make test``'s ``postgres`` is; otherwise Django's TRUNCATE stays.
  Then the rows the migrations wrote (the roles, the rejection reasons, content types and
  permissions), kept in the template's schema ``test_migrated_rows``, are put back: every
  test starts from the database as migrated, whichever tests ran before it on its worker
  (a test that reads the roles no longer depends on running before the first flush).
- **Commits.** The test databases are created with ``synchronous_commit = off``: a commit does
  not wait for the WAL to reach the disk (only a PostgreSQL crash could lose the last
  commits of a test database); what every connection sees is unchanged.
"""

import hashlib
import re
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

# Bumped when what goes into a template changes other than through migrations.
TEMPLATE_FORMAT = "2"
# The rows the migrations wrote (data migrations, post_migrate), kept in the template.
SNAPSHOT = "test_migrated_rows"


def _fingerprint() -> str:
    """A hash of every installed app's migration files (and Django's version)."""
    import django
    from django.apps import apps

    digest = hashlib.sha256(f"{TEMPLATE_FORMAT} {django.__version__}".encode())
    for config in sorted(apps.get_app_configs(), key=lambda c: c.label):
        folder = Path(config.path) / "migrations"
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else ():
            digest.update(f"{config.label}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _exists(cursor, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def _snapshot_migrated_rows(connection) -> None:
    """Copy every table the migrations left rows in (the roles, the rejection reasons, content
    types, permissions) into the schema ``SNAPSHOT``, outside Django's search path."""
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SNAPSHOT}")
        for table in sorted(tables):
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {_quote(table)})")  # noqa: S608
            if cursor.fetchone()[0]:
                cursor.execute(f"CREATE TABLE {SNAPSHOT}.{_quote(table)} AS TABLE {_quote(table)}")


def _restore_statements(connection) -> dict[str, str]:
    """Per table of the snapshot, the INSERT that puts the migrations' rows back."""
    statements = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, array_agg(quote_ident(a.attname) ORDER BY a.attnum) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = %s AND c.relkind = 'r' GROUP BY c.relname",
            [SNAPSHOT],
        )
        for table, columns in cursor.fetchall():
            names = ", ".join(columns)
            statements[table] = (
                f"INSERT INTO {_quote(table)} ({names}) "  # noqa: S608 (catalog names, quoted)
                f"SELECT {names} FROM {SNAPSHOT}.{_quote(table)};"
            )
    return statements


def _build_template(connection, cursor, template: str, base: str) -> None:
    """Migrate a database under a temporary name, then rename it to ``template``."""
    building = f"{template}_building"
    cursor.execute(f"DROP DATABASE IF EXISTS {_quote(building)}")  # an interrupted build's
    test_settings = connection.settings_dict.setdefault("TEST", {})
    test_name, original_name = test_settings.get("NAME"), connection.settings_dict["NAME"]
    test_settings["NAME"] = building
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        _snapshot_migrated_rows(connection)
    finally:
        from django.conf import settings

        connection.close()
        settings.DATABASES[connection.alias]["NAME"] = original_name
        connection.settings_dict["NAME"] = original_name
        test_settings["NAME"] = test_name
    cursor.execute(f"ALTER DATABASE {_quote(building)} RENAME TO {_quote(template)}")
    # Nobody connects to a template: a session on it would make copying it fail.
    cursor.execute(f"ALTER DATABASE {_quote(template)} ALLOW_CONNECTIONS false")
    cursor.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
        [base.replace("_", r"\_") + r"\_tpl\_%", template],
    )
    for (stale,) in cursor.fetchall():
        with suppress(Exception):  # being copied by another run: dropped next time
            cursor.execute(f"DROP DATABASE IF EXISTS {_quote(stale)}")


def migrated_template(test_database: str) -> str:
    """The template a test database (``test_<name>`` or ``test_<name>_gw<n>``) was copied from:
    migrated, holding the migrations' rows, and never connected to, so it can be copied again
    while a test database has sessions (a live server's thread keeps one for the session)."""
    base = re.sub(r"_gw\d+$", "", test_database)
    return f"{base}_tpl_{_fingerprint()}"


def _create_from_template(connection, *, rebuild: bool) -> str:
    """Create this process's test database from the template (made first if missing) and
    point the connection at it; returns the database's name before (for teardown)."""
    from django.conf import settings

    name = connection.creation._get_test_db_name()  # test_<NAME>, _gw<n> under xdist
    base = re.sub(r"_gw\d+$", "", name)
    template = migrated_template(name)
    assert len(template) <= 63, f"the template's name is too long for PostgreSQL: {template}"
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [template])
        try:
            if rebuild and _exists(cursor, template):
                cursor.execute(f"DROP DATABASE {_quote(template)}")
            if not _exists(cursor, template):
                _build_template(connection, cursor, template, base)
            cursor.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")
            cursor.execute(f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(template)}")
            cursor.execute(f"ALTER DATABASE {_quote(name)} SET synchronous_commit = off")
        finally:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [template])
    old_name = connection.settings_dict["NAME"]
    connection.close()
    # What Django's create_test_db does once the database exists.
    settings.DATABASES[connection.alias]["NAME"] = name
    connection.settings_dict["NAME"] = name
    connection.ensure_connection()
    return old_name


def _fast_flush(connection) -> None:
    """Make ``flush`` empty every table and put the migrations' rows back (see the module's
    docstring): DELETE when this role may switch triggers off, TRUNCATE otherwise."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        may_delete = cursor.fetchone()[0]
    restore = _restore_statements(connection)
    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        if may_delete:
            # execute_sql_flush runs these in one transaction: SET LOCAL ends with it.
            empty = [
                "SET LOCAL session_replication_role = replica;",
                *(f"DELETE FROM {self.quote_name(table)};" for table in tables),  # noqa: S608
            ]
        else:
            empty = truncate(self, style, tables)
        return [*empty, *(restore[table] for table in sorted(tables) if table in restore)]

    DatabaseOperations.sql_flush = sql_flush


def _drop(connection, old_name: str) -> None:
    """Drop this process's test database, even if a session of a thread or a process the
    suite started is still open on it (Django's plain DROP would fail and leave it)."""
    from django.conf import settings

    name = connection.settings_dict["NAME"]
    connection.close()
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
    settings.DATABASES[connection.alias]["NAME"] = old_name
    connection.settings_dict["NAME"] = old_name


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """pytest-django's fixture of the same name, with the template and the fast flush."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.backends.postgresql.operations import DatabaseOperations

    connection = connections[DEFAULT_DB_ALIAS]
    truncate = DatabaseOperations.sql_flush
    with django_db_blocker.unblock():
        old_name = _create_from_template(connection, rebuild=django_db_createdb)
        _fast_flush(connection)
    try:
        yield
    finally:
        DatabaseOperations.sql_flush = truncate
        if not django_db_keepdb:
            with django_db_blocker.unblock():
                try:
                    _drop(connection, old_name)
                except Exception as exc:  # as pytest-django: warn, go on
                    request.node.warn(
                        pytest.PytestWarning(f"Could not drop the test database: {exc!r}")
                    )
