"""The database roles besides the owner, created and kept up to date by every migration run.

``migrate`` (``flask db upgrade``, as the owner: POSTGRES_USER) calls ``ensure_roles`` in the
transaction of the migrations and under their advisory lock (migrations/env.py), so:

* an existing installation gains the roles on its next ``make up`` (the image's init scripts
  run only on an empty volume);
* a password changed in ``.env`` (or its ``_FILE``) is set again at every run: rotating it is
  "change .env, make up";
* two migrate runs at once (a deploy and a stray one) take turns instead of racing on the
  catalog ("tuple concurrently updated");
* a table a migration adds is granted in the same commit that creates it.

The roles:

``app`` (APP_DB_USER, web/worker/beat)
    Logs in, reads and writes every table (SELECT, INSERT, UPDATE, DELETE; sequences), nothing
    else: no superuser, no CREATEDB/CREATEROLE/REPLICATION, no CREATE on the schema or the
    database, no TEMP, not the owner of anything (so no ALTER, DROP or TRUNCATE). It carries
    DB_STATEMENT_TIMEOUT_MS as its own ``statement_timeout`` (not a libpq startup option, which
    PgBouncer refuses). It is a member of ``pg_read_all_stats``: read-only statistics, because
    ``pg_stat_wal_receiver.status`` (is the replica streaming?) is NULL for anyone else.
``monitor`` (MONITOR_USER, postgres_exporter)
    ``pg_monitor`` only, 5 connections; created when MONITOR_PASSWORD is set.

The replication role stays the init script's (postgres/primary/10-replication.sh): its
password is baked into the replica's primary_conninfo, so it is not rotated from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

logger = logging.getLogger(__name__)

#: What the app may do to every table and sequence of the schema, now and later.
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"


@dataclass(frozen=True)
class RoleSpec:
    """The roles to ensure, from the settings of the migrating process."""

    app_user: str
    app_password: str
    statement_timeout_ms: int
    monitor_user: str = "monitor"
    monitor_password: str = ""
    schema: str = "public"


def _run_formatted(conn: Connection, template: str, **params: object) -> None:
    """Have the server build the statement with ``format()`` (%I quotes a name, %L a literal),
    then run it: DDL takes no bind parameters, and nothing is quoted by hand."""
    placeholders = ", ".join(f":{name}" for name in params)
    statement = conn.execute(text(f"SELECT format(:template, {placeholders})"), {"template": template, **params})
    conn.execute(text(statement.scalar_one().replace(":", r"\:")))


def _ensure_login_role(conn: Connection, role: str) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
    if not exists:
        _run_formatted(conn, "CREATE ROLE %I LOGIN", role=role)
        logger.info("database role created", extra={"role": role})


def ensure_roles(conn: Connection, spec: RoleSpec) -> None:
    """Create or update the app and monitor roles and grant the app the tables of ``spec.schema``
    in the current database. Idempotent; run by the owner (needs CREATEROLE or superuser)."""
    if not spec.app_password:
        raise ValueError("APP_DB_PASSWORD (or APP_DB_PASSWORD_FILE) is empty: the app role needs a password")
    owner = conn.execute(text("SELECT current_user")).scalar_one()
    if spec.app_user == owner:
        raise ValueError(f"APP_DB_USER must not be the owner role ({owner}): the app would keep every privilege")
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    app = spec.app_user

    _ensure_login_role(conn, app)
    _run_formatted(
        conn,
        "ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD %L",
        role=app,
        password=spec.app_password,
    )
    _run_formatted(conn, "ALTER ROLE %I SET statement_timeout = %L", role=app, ms=str(spec.statement_timeout_ms))
    _run_formatted(conn, "GRANT pg_read_all_stats TO %I", role=app)

    # Nobody but the owner creates objects: not in the schema (PostgreSQL < 15 let PUBLIC),
    # not as temporary tables.
    _run_formatted(conn, "REVOKE CREATE ON SCHEMA %I FROM PUBLIC", schema=spec.schema)
    _run_formatted(conn, "REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC", database=database)
    _run_formatted(conn, "REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I", database=database, role=app)
    _run_formatted(conn, "GRANT CONNECT ON DATABASE %I TO %I", database=database, role=app)
    _run_formatted(conn, "GRANT USAGE ON SCHEMA %I TO %I", schema=spec.schema, role=app)
    _run_formatted(conn, f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA %I TO %I", schema=spec.schema, role=app)
    _run_formatted(
        conn, f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA %I TO %I", schema=spec.schema, role=app
    )
    # Tables the owner creates later (a migration, a hand-made table) are the app's at once too.
    _run_formatted(
        conn,
        f"ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT {TABLE_PRIVILEGES} ON TABLES TO %I",
        owner=owner,
        schema=spec.schema,
        role=app,
    )
    _run_formatted(
        conn,
        f"ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO %I",
        owner=owner,
        schema=spec.schema,
        role=app,
    )
    # The schema's version is the migrations' business: the app may read it, not move it.
    version_table = conn.execute(
        text("SELECT to_regclass(format('%I.alembic_version', CAST(:schema AS text)))"), {"schema": spec.schema}
    ).scalar_one()
    if version_table is not None:
        _run_formatted(
            conn, "REVOKE INSERT, UPDATE, DELETE ON %I.alembic_version FROM %I", schema=spec.schema, role=app
        )

    if spec.monitor_password:
        monitor = spec.monitor_user
        _ensure_login_role(conn, monitor)
        _run_formatted(
            conn,
            "ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 5 PASSWORD %L",
            role=monitor,
            password=spec.monitor_password,
        )
        _run_formatted(conn, "GRANT pg_monitor TO %I", role=monitor)
    logger.info("database roles ready", extra={"app_role": app, "monitor_role": spec.monitor_user or None})
