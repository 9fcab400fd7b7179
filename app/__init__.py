"""Newsdesk: a news service built to run as many identical replicas behind nginx."""

from __future__ import annotations

import logging
import socket
import uuid

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from app.auth import init_auth
from app.config import Settings
from app.database.routing import init_router
from app.extensions import celery_init_app, csrf, db, init_redis, init_sessions, migrate
from app.limits import init_limits
from app.logs import configure_logging, request_id_var
from app.metrics import init_metrics
from app.services import heartbeats

#: This replica's name (the container hostname), sent as X-Served-By on every response.
HOSTNAME = socket.gethostname()
_MAX_REQUEST_ID = 128

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment). Connects to nothing yet."""
    settings = settings or Settings.from_env()
    settings.check_production()
    configure_logging(settings.log_level)

    app = Flask(__name__)
    app.extensions["settings"] = settings
    app.config.update(settings.flask_config())
    # nginx is exactly one trusted hop: take client address, scheme and host from it.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db)
    init_redis(app)
    init_router(app, lambda: db.engines["replica"])
    init_sessions(app)
    csrf.init_app(app)
    celery_init_app(app)

    register_request_hooks(app)
    init_metrics(app)
    init_auth(app)
    register_blueprints(app)
    init_limits(app)
    register_cli(app)
    return app


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def bind_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if 0 < len(incoming) <= _MAX_REQUEST_ID and incoming.isprintable() else uuid.uuid4().hex
        g.request_id = rid
        g.request_id_token = request_id_var.set(rid)

    @app.after_request
    def stamp_response(response: Response) -> Response:
        heartbeats.beat_throttled(app.extensions["redis"], heartbeats.REPLICAS, HOSTNAME)
        response.headers["X-Served-By"] = HOSTNAME
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def unbind_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)


def register_blueprints(app: Flask) -> None:
    from app.blueprints.account import bp as account_bp
    from app.blueprints.api import init_api
    from app.blueprints.auth import bp as auth_bp
    from app.blueprints.health import bp as health_bp
    from app.blueprints.ops import bp as ops_bp
    from app.blueprints.pages import bp as pages_bp
    from app.blueprints.pages.errors import register_error_pages

    app.register_blueprint(health_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(ops_bp)
    init_api(app)  # JSON API v1, its OpenAPI document and problem+json errors
    register_error_pages(app)


def register_cli(app: Flask) -> None:
    from app.cli import keys_cli, tasks_cli, users_cli
    from app.seed import seed

    for command in (tasks_cli, users_cli, keys_cli, seed):
        app.cli.add_command(command)
