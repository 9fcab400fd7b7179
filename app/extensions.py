"""Extension objects, created unbound here and bound to an app in ``create_app`` (``db`` lives
with the routing session in app.database), and the Redis clients, sessions and Celery."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery, Task
from flask import Flask
from flask_migrate import Migrate
from flask_session.redis import RedisSessionInterface
from flask_wtf import CSRFProtect

from app.redis_clients import Outage, counter_client, redis_client

migrate = Migrate()
csrf = CSRFProtect()


def server_outage(app: Flask, url: str) -> Outage | None:
    """The outage breaker that every client of the Redis server at ``url`` shares in this process
    (none with REDIS_RETRIES=0). See app.redis_clients."""
    if app.extensions["settings"].redis_retries <= 0:
        return None
    parts = urlsplit(url)
    server = f"{parts.hostname}:{parts.port or 6379}"
    outages: dict[str, Outage] = app.extensions.setdefault("redis_outages", {})
    return outages.setdefault(server, Outage(f"Redis at {server}"))


def init_redis(app: Flask) -> None:
    """Clients for the `redis` service (sessions, read-your-writes marks; ``redis_counters`` for
    view counts, which must never be resent) and the `cache` service. See app.redis_clients."""
    settings = app.extensions["settings"]
    retries = settings.redis_retries
    outage = server_outage(app, settings.redis_url)
    app.extensions["redis"] = redis_client(settings.redis_url, retries, outage)
    app.extensions["redis_counters"] = counter_client(settings.redis_url, retries, outage)
    app.extensions["cache_redis"] = redis_client(settings.cache_url, retries, server_outage(app, settings.cache_url))


class UnreadSession(RedisSessionInterface.session_class):
    """The stand-in for a session that Redis could not return: empty, and never saved."""


class ResilientRedisSessionInterface(RedisSessionInterface):
    """Server-side sessions in Redis that degrade instead of failing when Redis is down:
    the request is served as anonymous (logged out) rather than answered with a 500.

    The stand-in session is never saved and its cookie never sent: saving it (a login page
    puts a CSRF token in it) would replace the visitor's session cookie with the stand-in's and
    log them out for good, although their session is intact in Redis for the next request."""

    def open_session(self, app: Flask, request: Any) -> Any:
        try:
            return super().open_session(app, request)
        except redis.RedisError as exc:
            app.logger.warning("session store unavailable, serving anonymously: %s", exc)
            return UnreadSession(sid=self._generate_sid(self.sid_length), permanent=self.permanent)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if isinstance(session, UnreadSession):
            return
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
