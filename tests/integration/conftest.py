"""Integration fixtures: the real PostgreSQL primary + streaming replica and Redis of the stack.

Runs in the `test` compose service (on the stack's network). Uses its own database,
`newsdesk_test` (created on the primary, streamed to the replica like any other) and its
own Redis database numbers, so the running stack's data is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.database import db
from tests.integration.support import TABLES, ensure_database, integration_settings


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
        for name in ("redis", "cache_redis"):
            app.extensions[name].flushdb()
        redis.Redis.from_url(app.config["CELERY"]["broker_url"]).flushdb()
    yield
