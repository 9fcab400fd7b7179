"""Helpers shared by test modules (plain functions and values; fixtures live in conftest.py)."""

from __future__ import annotations

from flask import Flask

from app import create_app
from app.config import Settings

NOWHERE_PG = "postgresql+psycopg2://newsdesk@/newsdesk?host=/nonexistent/newsdesk-unit-tests"
NOWHERE_REDIS = "redis://127.0.0.1:1/0"
#: Settings for an app whose PostgreSQL and Redis are addresses where nothing listens.
UNIT_ENV = {
    "APP_ENV": "test",
    "SECRET_KEY": "unit-tests-only-" + "k" * 32,
    "DATABASE_URL": NOWHERE_PG,
    "DATABASE_REPLICA_URL": NOWHERE_PG,
    "REDIS_URL": NOWHERE_REDIS,
    "CACHE_REDIS_URL": NOWHERE_REDIS,
    "CELERY_BROKER_URL": NOWHERE_REDIS,
    "CELERY_RESULT_BACKEND": NOWHERE_REDIS,
    "RATELIMIT_STORAGE_URL": "memory://",  # counted in this process; a fresh store per app
    "REDIS_RETRIES": "0",  # nothing listens: a retry would only wait
    "LOG_LEVEL": "WARNING",
}


def offline_app() -> Flask:
    """The app with no service to reach (UNIT_ENV): building it, or a request that needs no
    database, must not connect to anything."""
    return create_app(Settings.from_env(UNIT_ENV))


class FakeClock:
    """A clock for breakers and monitors that moves only when a test moves it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
