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
from tests.integration.support import TABLES, admin_client, ensure_database, integration_settings


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    settings = integration_settings()
    ensure_database(settings)
    application = create_app(settings)
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.engines[None].dispose()
        db.engines["replica"].dispose()


@pytest.fixture(autouse=True)
def clean(app: Flask) -> Iterator[None]:
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        # The app's and the broker's Redis users may not FLUSHDB: the tests empty their
        # databases as `default`, the operators' user.
        settings = integration_settings()
        for url in (settings.redis_url, settings.broker_url, settings.cache_url):
            admin_client(url).flushdb()
    yield
