"""The server-rendered site: public pages, login and registration, the account page, /ops,
the health probes, the HTML error pages, and what every template shares (the layout's
context and filters)."""

from __future__ import annotations

from flask import Flask

from app.web import account, auth, health, ops, pages
from app.web.errors import register_error_pages
from app.web.templating import FILTERS, layout_context


def init_web(app: Flask) -> None:
    for blueprint in (health.bp, pages.bp, auth.bp, account.bp, ops.bp):
        app.register_blueprint(blueprint)
    app.context_processor(layout_context)
    app.jinja_env.filters.update(FILTERS)
    register_error_pages(app)
