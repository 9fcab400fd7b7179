"""JSON API v1 under /api/v1, with its OpenAPI document at /api/v1/openapi.json and docs at /api/v1/docs.

Built on flask-smorest: routes, schemas and error responses are declared once, and the
OpenAPI document is generated from them.
"""

from __future__ import annotations

from flask import Flask

from app.api import account, articles  # noqa: F401 - attach the views to bp
from app.api.blueprint import bp
from app.api.problems import init_problem_handlers
from app.api.spec import URL_PREFIX, ProblemApi, api_config
from app.extensions import csrf

__all__ = ["bp", "init_api"]


def init_api(app: Flask) -> ProblemApi:
    """Register the API, its documentation and the problem+json error handlers on ``app``."""
    for name, value in api_config(app).items():
        app.config.setdefault(name, value)
    api = ProblemApi(app)
    api.declare_security()
    api.declare_schemas()  # before the views, which refer to them
    api.register_blueprint(bp, url_prefix=URL_PREFIX)
    csrf.exempt(bp)  # authenticated by a key header only, never the session cookie: nothing for CSRF to forge
    init_problem_handlers(app)
    return api
