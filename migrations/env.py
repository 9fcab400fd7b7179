"""Alembic environment for Flask-Migrate (`flask db upgrade`, run by the one-shot `migrate` service).

Logging stays the app's JSON logging (alembic.ini's logging section is not applied). Online
migrations hold a PostgreSQL advisory lock for their whole run, so an accidental second run
(two `migrate` containers, a developer's shell) waits for the first and then finds nothing
left to do, instead of colliding with it.

Run as the owner (DB_ROLE=owner, the `migrate` service), the same transaction and lock also
create and update the other roles and grant the app role the tables (app.database.roles): a
table is never visible to the running code without its grants, and concurrent runs take turns.
"""

from __future__ import annotations

import logging

from alembic import context
from flask import current_app
from sqlalchemy import text

from app.database.roles import RoleSpec, ensure_roles

#: Arbitrary, fixed 64-bit key shared by every migration run of this project.
MIGRATION_LOCK_KEY = 7_353_213_100_000_001

config = context.config
logger = logging.getLogger("alembic.env")
target_db = current_app.extensions["migrate"].db


def get_engine():  # noqa: ANN201 - alembic's env.py convention
    return target_db.engine


config.set_main_option("sqlalchemy.url", get_engine().url.render_as_string(hide_password=False).replace("%", "%%"))


def run_migrations_offline() -> None:
    """Emit SQL for the migrations without a database connection (`flask db upgrade --sql`)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_db.metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def ensure_database_roles(connection) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    settings = current_app.extensions["settings"]
    if settings.db_role != "owner":
        logger.info("not the owner (DB_ROLE=%s): the database roles are left as they are", settings.db_role)
        return
    spec = RoleSpec(
        app_user=settings.app_db_user,
        app_password=settings.app_db_password,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        monitor_user=settings.monitor_user,
        monitor_password=settings.monitor_password,
    )
    ensure_roles(connection, spec)


def run_migrations_online() -> None:
    def process_revision_directives(context, revision, directives) -> None:  # noqa: ANN001
        # `flask db migrate` with no schema change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    conf_args.setdefault("process_revision_directives", process_revision_directives)

    with get_engine().connect() as connection:
        logger.info("taking the migration advisory lock")
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
            with context.begin_transaction():
                context.run_migrations()
                ensure_database_roles(connection)
            connection.commit()
            logger.info("migrations are up to date")
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
