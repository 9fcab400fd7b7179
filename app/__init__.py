"""Newsdesk: a news service built to run as many identical replicas behind nginx.

``create_app`` is the only place that imports and wires everything. Its imports sit inside
the function, so importing a small module of the package (gunicorn's config imports
``app.logs`` in the master process) does not load the whole app before gevent patches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment). Connects to nothing yet."""
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app import error_reporting, extensions, identity, limits, logs, metrics, request_hooks
    from app.api import init_api
    from app.config import Settings
    from app.database import db
    from app.database.routing import init_router
    from app.debug_toolbar import init_debug_toolbar
    from app.json_provider import init_json
    from app.response_cache import init_response_cache
    from app.security_headers import init_security_headers
    from app.services.cache import init_cache
    from app.services.outbox import init_outbox
    from app.services.view_counts import ViewBuffer
    from app.static_assets import init_static_assets
    from app.web import init_web

    settings = settings or Settings.from_env()
    settings.check_production()
    logs.configure_logging(settings.log_level)
    error_reporting.init_error_reporting(settings)  # nothing without SENTRY_DSN

    app = Flask(__name__)
    init_json(app)
    app.extensions["settings"] = settings
    app.config.update(settings.flask_config())
    # nginx is exactly one trusted hop: take client address, scheme and host from it.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    db.init_app(app)
    extensions.migrate.init_app(app, db)
    extensions.init_redis(app)
    with app.app_context():  # the engines exist (unconnected) once db is bound
        init_router(app, db.engines[None], lambda: db.engines["replica"])
    init_cache(app)
    app.extensions["views"] = ViewBuffer(app.extensions["redis_counters"], settings.view_flush_seconds)
    extensions.init_sessions(app)
    extensions.csrf.init_app(app)
    extensions.celery_init_app(app)
    init_outbox(app)

    request_hooks.init_request_hooks(app)
    init_security_headers(app)  # before the response cache, which adds them to its own answers
    metrics.init_metrics(app)
    identity.init_identity(app)
    init_static_assets(app)
    init_web(app)
    init_api(app)
    limits.init_limits(app)
    init_debug_toolbar(app)  # APP_ENV=development only
    # Outermost, in front of ProxyFix: a hit needs nothing the layers below provide.
    init_response_cache(app, app.extensions["views"].add)
    register_cli(app)
    return app


def register_cli(app: Flask) -> None:
    from app.cli import keys_cli, tasks_cli, users_cli
    from app.seed import seed

    for command in (tasks_cli, users_cli, keys_cli, seed):
        app.cli.add_command(command)
