"""Extension objects, created unbound here and bound to an app in ``create_app`` (``db`` lives
with the routing session in app.database), and the Redis clients, sessions and Celery."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery, Task
from flask import Flask
from flask_migrate import Migrate
from flask_session.redis import RedisSessionInterface
from flask_wtf import CSRFProtect

migrate = Migrate()
csrf = CSRFProtect()


def redis_client(url: str) -> redis.Redis:
    """A client with short timeouts: a dead Redis should fail a request fast, not hang it."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def init_redis(app: Flask) -> None:
    """Clients for the `redis` service (sessions, read-your-writes marks) and the `cache` service."""
    settings = app.extensions["settings"]
    app.extensions["redis"] = redis_client(settings.redis_url)
    app.extensions["cache_redis"] = redis_client(settings.cache_url)


class ResilientRedisSessionInterface(RedisSessionInterface):
    """Server-side sessions in Redis that degrade instead of failing when Redis is down:
    the request is served as anonymous (logged out) rather than answered with a 500."""

    def open_session(self, app: Flask, request: Any) -> Any:
        try:
            return super().open_session(app, request)
        except redis.RedisError as exc:
            app.logger.warning("session store unavailable, serving anonymously: %s", exc)
            return self.session_class(sid=self._generate_sid(self.sid_length), permanent=self.permanent)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        try:
            super().save_session(app, session, response)
        except redis.RedisError as exc:
            app.logger.warning("session store unavailable, session not saved: %s", exc)


def init_sessions(app: Flask) -> None:
    """Server-side sessions in the `redis` service, shared by every replica."""
    app.config["PERMANENT_SESSION_LIFETIME"] = 14 * 24 * 3600
    app.session_interface = ResilientRedisSessionInterface(
        app, client=app.extensions["redis"], key_prefix="newsdesk:session:", permanent=True
    )


def celery_init_app(app: Flask) -> Celery:
    """Bind Celery to the app as in Flask's Celery guide: every task runs in an app context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
