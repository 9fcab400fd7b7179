"""Settings and the test database for integration tests (plain helpers; the fixtures are in conftest)."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.config import Settings

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
