"""Integration fixtures: the real PostgreSQL primary + streaming replica and Redis of the stack.

Runs in the `test` compose service (on the stack's network). Uses its own database,
`newsdesk_test` (created on the primary, streamed to the replica like any other) and its
own Redis database numbers, so the running stack's data is never touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.extensions import db
from tests.polling import wait_until  # noqa: F401 - re-exported for the tests

TEST_DB = "newsdesk_test"
TABLES = ("article_terms", "view_flush_batches", "api_keys", "articles", "users")


def integration_settings(**overrides: str) -> Settings:
    base = Settings.from_env()
    env = dict(os.environ)
    env.update(
        APP_ENV="test",
        DATABASE_URL=make_url(base.database_url).set(database=TEST_DB).render_as_string(hide_password=False),
        DATABASE_REPLICA_URL=make_url(base.replica_url).set(database=TEST_DB).render_as_string(hide_password=False),
        REDIS_URL="redis://redis:6379/5",
        CELERY_BROKER_URL="redis://redis:6379/6",
        CELERY_RESULT_BACKEND="redis://redis:6379/7",
        CACHE_REDIS_URL="redis://cache:6379/1",
        REPLICA_LSN_CACHE_MS="0",
        REPLICA_MAX_LAG_SECONDS="120",
    )
    env.update(overrides)
    return Settings.from_env(env)


def ensure_database(settings: Settings) -> None:
    admin_url = make_url(settings.database_url).set(database="postgres")
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": TEST_DB}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{TEST_DB}"'))
    engine.dispose()
    # The new database reaches the replica through WAL like everything else.
    replica = sa.create_engine(settings.replica_url)
    deadline = time.monotonic() + 30
    while True:
        try:
            with replica.connect():
                break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    replica.dispose()


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
