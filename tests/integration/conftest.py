"""Integration fixtures: the real PostgreSQL primary + streaming replica and Redis of the stack.

Runs in the `test` compose service (on the stack's network). Uses its own database,
`newsdesk_test` (created on the primary, streamed to the replica like any other) and its
own Redis database numbers, so the running stack's data is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.database import db
from tests.integration.support import TABLES, admin_client, ensure_database, integration_settings, owner_engine


@pytest.fixture(scope="session")
def owner_db() -> Iterator[sa.Engine]:
    """The test database as its owner (migrations, TRUNCATE): what migrate may do, the app may not."""
    owner = integration_settings("owner")
    ensure_database(owner)
    # Migrated as `migrate` does it: as the owner, which also creates and grants the app role.
    migrator = create_app(owner)
    with migrator.app_context():
        upgrade()
        db.engines[None].dispose()
        db.engines["replica"].dispose()
    engine = owner_engine()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(owner_db: sa.Engine) -> Iterator[Flask]:
    """The app as web and workers run it: connected as the app role."""
    application = create_app(integration_settings())
    yield application
    with application.app_context():
        db.engines[None].dispose()
        db.engines["replica"].dispose()


@pytest.fixture(autouse=True)
def clean(app: Flask, owner_db: sa.Engine) -> Iterator[None]:
    with owner_db.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    with app.app_context():
        # The app's and the broker's Redis users may not FLUSHDB: the tests empty their
        # databases as `default`, the operators' user.
        settings = integration_settings()
        for url in (settings.redis_url, settings.broker_url, settings.cache_url):
            admin_client(url).flushdb()
    yield
