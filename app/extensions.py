"""Extension objects, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery, Task
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app.db.routing import RoutingSession
from app.models.base import Base

db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
migrate = Migrate()


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
