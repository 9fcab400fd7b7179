"""Least privilege: the app's role reads and writes the tables and can do nothing else.

The roles are the ones migrate made (the session's migration ran as the owner: conftest's
``owner_db``); the app connects as web and workers do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from psycopg2 import errorcodes

from app.database import db
from app.database.roles import RoleSpec, ensure_roles
from app.database.wal import replica_position
from tests.integration.support import integration_settings


@pytest.fixture
def app_conn(app: Flask) -> Iterator[sa.Connection]:
    """A connection of the app's own pool to the primary (as the app role), in a transaction
    that is rolled back."""
    with app.app_context(), db.engine.connect() as conn:
        yield conn
        conn.rollback()


def refused(conn: sa.Connection, sql: str) -> str:
    """Run ``sql`` in a savepoint and return the SQLSTATE it failed with (or fail the test)."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(sql))
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        return str(getattr(exc.orig, "pgcode", ""))
    savepoint.rollback()
    raise AssertionError(f"the app role was allowed: {sql}")


def test_the_app_connects_as_its_own_role_which_is_not_a_superuser(app_conn: sa.Connection) -> None:
    role = app_conn.execute(
        sa.text(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    assert role.rolname == integration_settings().app_db_user
    assert not (role.rolsuper or role.rolcreatedb or role.rolcreaterole or role.rolreplication or role.rolbypassrls)
    owner = app_conn.execute(sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'articles'")).scalar_one()
    assert owner != role.rolname, "the app must not own the tables it uses"


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE app_made (id int)",
        "CREATE TEMPORARY TABLE app_made (id int)",
        "CREATE SCHEMA app_made",
        "CREATE INDEX app_made ON articles (title)",
        "ALTER TABLE articles ADD COLUMN app_made int",
        "DROP TABLE articles",
        "DROP TABLE outbox",
        "TRUNCATE users CASCADE",
        "DELETE FROM alembic_version",
        "CREATE ROLE app_made",
    ],
)
def test_the_app_role_cannot_run_ddl(app_conn: sa.Connection, ddl: str) -> None:
    code = refused(app_conn, ddl)
    # 42501 insufficient_privilege ("permission denied", or "must be owner" for ALTER/DROP/INDEX).
    # CREATE DATABASE cannot run in a transaction; rolcreatedb is false (the test above).
    assert code == errorcodes.INSUFFICIENT_PRIVILEGE, (ddl, code)


def test_the_app_role_reads_and_writes_every_table(app_conn: sa.Connection) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    user_id = app_conn.execute(
        sa.text("INSERT INTO users (email, display_name, password_hash) VALUES (:e, 'Role', 'x') RETURNING id"),
        {"e": email},
    ).scalar_one()
    article_id = app_conn.execute(
        sa.text("INSERT INTO articles (author_id, title, body) VALUES (:u, 'T', 'B') RETURNING id"), {"u": user_id}
    ).scalar_one()
    app_conn.execute(sa.text("UPDATE articles SET views = views + 1 WHERE id = :a"), {"a": article_id})
    assert app_conn.execute(sa.text("SELECT views FROM articles WHERE id = :a"), {"a": article_id}).scalar_one() == 1
    app_conn.execute(sa.text("DELETE FROM articles WHERE id = :a"), {"a": article_id})
    # By oid, from pg_class: a name built for every row could be tried on another schema's
    # table before the schema filter applies (the planner orders conditions as it likes). One
    # privilege per call: with a list, has_table_privilege is true if any of them is held.
    tables = app_conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version' "
            "AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') "
            "AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))"
        )
    ).scalars()
    assert list(tables) == [], "tables the app role cannot fully use"
    assert app_conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_the_statement_timeout_is_the_app_roles_own_on_both_servers(app: Flask) -> None:
    expected = f"{integration_settings().db_statement_timeout_ms}ms"
    with app.app_context():
        for bind in (None, "replica"):
            with db.engines[bind].connect() as conn:
                shown = conn.execute(
                    sa.text("SELECT setting || unit FROM pg_settings WHERE name = 'statement_timeout'")
                )
                assert shown.scalar_one() == expected, bind


def test_the_app_role_sees_whether_the_replica_streams(app: Flask) -> None:
    """pg_stat_wal_receiver's status is NULL to roles without pg_read_all_stats: the router
    would then take the replica for broken and read everything from the primary."""
    with app.app_context(), db.engines["replica"].connect() as conn:
        position = replica_position(conn)
    assert position.in_recovery and position.streaming


def test_a_table_the_owner_adds_later_is_the_apps_at_once(app_conn: sa.Connection, owner_db: sa.Engine) -> None:
    table = f"later_{uuid.uuid4().hex[:8]}"
    with owner_db.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, note text)"))
    try:
        app_conn.execute(sa.text(f"INSERT INTO {table} (note) VALUES ('hi')"))
        assert app_conn.execute(sa.text(f"SELECT note FROM {table}")).scalar_one() == "hi"
        app_conn.rollback()
    finally:
        with owner_db.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))


def test_ensuring_the_roles_again_rotates_the_password_and_keeps_the_grants(owner_db: sa.Engine) -> None:
    settings = integration_settings("owner")
    spec = RoleSpec(
        app_user=settings.app_db_user,
        app_password="rotated-" + uuid.uuid4().hex,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    app_url = sa.engine.make_url(integration_settings().database_url)
    try:
        with owner_db.begin() as conn:
            ensure_roles(conn, spec)
        rotated = sa.create_engine(app_url.set(password=spec.app_password))
        with rotated.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM articles")).scalar_one() >= 0
        rotated.dispose()
        stale = sa.create_engine(app_url)
        with pytest.raises(sa.exc.OperationalError):
            stale.connect().close()
        stale.dispose()
    finally:
        with owner_db.begin() as conn:
            ensure_roles(
                conn, RoleSpec(settings.app_db_user, settings.app_db_password, settings.db_statement_timeout_ms)
            )
