"""Settings and the test database for integration tests (plain helpers; the fixtures are in conftest).

The app under test connects as the app role (APP_DB_USER: DML only), as web and workers do. What
the tests themselves need beyond that goes through the owner (POSTGRES_USER), as migrate does:
creating their database (CREATEDB would do), migrating it, emptying the tables between tests
(TRUNCATE) and pausing the replica's replay (``pg_wal_replay_pause`` is superuser-only unless a
superuser grants it in each database, and this database is the tests' own).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import redis
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from app.config import Settings, env_secret

TEST_DB = "newsdesk_test"
TABLES = ("article_terms", "view_flush_batches", "api_keys", "articles", "users", "outbox")


def with_database(url: str, database: int) -> str:
    """A Redis URL with another database number (same host and credentials)."""
    return urlsplit(url)._replace(path=f"/{database}").geturl()


def admin_client(url: str) -> redis.Redis:
    """A client of ``url``'s server and database as its `default` user, whom the stack lets run
    admin commands (FLUSHDB, CLIENT LIST/KILL) that the app's and the broker's users may not."""
    parts = urlsplit(url)
    password = env_secret(os.environ, "CACHE_PASSWORD" if parts.hostname == "cache" else "REDIS_PASSWORD")
    netloc = f"default:{quote(password, safe='')}@{parts.hostname}:{parts.port or 6379}" if password else parts.netloc
    return redis.Redis.from_url(parts._replace(netloc=netloc).geturl())


def integration_settings(role: str = "app", **overrides: str) -> Settings:
    """Settings for the test database, connecting as ``role`` (app or owner)."""
    base = Settings.from_env({**os.environ, "DB_ROLE": role})
    env = dict(os.environ)
    env.update(
        APP_ENV="test",
        DB_ROLE=role,
        DATABASE_URL=make_url(base.database_url).set(database=TEST_DB).render_as_string(hide_password=False),
        DATABASE_REPLICA_URL=make_url(base.replica_url).set(database=TEST_DB).render_as_string(hide_password=False),
        # The stack's own users and passwords, on databases of the tests' own.
        REDIS_URL=with_database(base.redis_url, 5),
        CELERY_BROKER_URL=with_database(base.broker_url, 6),
        CELERY_RESULT_BACKEND=with_database(base.result_backend_url, 7),
        CACHE_REDIS_URL=with_database(base.cache_url, 1),
        REPLICA_LSN_CACHE_MS="0",
        REPLICA_MAX_LAG_SECONDS="120",
        # Views go to Redis at once here; tests/integration/test_views.py covers the batching.
        VIEW_FLUSH_SECONDS="0",
    )
    env.update(overrides)
    return Settings.from_env(env)


def owner_engine(bind: str = "primary") -> sa.Engine:
    """An engine on the test database as the owner, on the primary or the replica."""
    settings = integration_settings("owner")
    return sa.create_engine(settings.replica_url if bind == "replica" else settings.database_url)


@contextlib.contextmanager
def replica_replay_paused() -> Iterator[None]:
    """The replica stops replaying WAL (it still receives it) until the block ends: what is
    written meanwhile is on the primary only, and the replica's lag grows."""
    replica = owner_engine("replica")
    with replica.connect() as conn:
        conn.execute(sa.text("SELECT pg_wal_replay_pause()"))
        conn.commit()
    try:
        yield
    finally:
        with replica.connect() as conn:
            conn.execute(sa.text("SELECT pg_wal_replay_resume()"))
            conn.commit()
        replica.dispose()


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


def queued(app: Flask) -> list[dict[str, Any]]:
    """The headers of the task messages waiting in the broker's default queue (the test's own
    Redis database), oldest first (kombu pushes on the left and workers pop on the right)."""
    broker = redis.Redis.from_url(app.config["CELERY"]["broker_url"])
    return [json.loads(raw)["headers"] for raw in reversed(broker.lrange("default", 0, -1))]
