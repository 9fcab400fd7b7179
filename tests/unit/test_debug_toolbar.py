"""Development mode (make dev): the debug toolbar and the page cache follow APP_ENV."""

from __future__ import annotations

import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from tests.support import NOWHERE_PG, UNIT_ENV

#: Production refuses a database URL without a password; nothing listens there either.
PRODUCTION_PG = NOWHERE_PG.replace("newsdesk@", "newsdesk:unit-tests-only-password@")
#: The toolbar's outermost element, injected before </body>.
TOOLBAR_MARK = 'id="flDebug"'


def app_for(app_env: str, **extra: str) -> Flask:
    env = {**UNIT_ENV, "APP_ENV": app_env, "DATABASE_URL": PRODUCTION_PG, "DATABASE_REPLICA_URL": PRODUCTION_PG}
    return create_app(Settings.from_env({**env, **extra}))


def test_development_wires_the_toolbar_into_html_pages() -> None:
    app = app_for("development")
    assert "debug_toolbar" in app.extensions
    assert "debugtoolbar" in app.blueprints
    assert app.config["DEBUG_TB_INTERCEPT_REDIRECTS"] is False
    assert app.config["TEMPLATES_AUTO_RELOAD"] is True
    response = app.test_client().get("/no-such-page")  # an HTML page that needs no database
    assert response.status_code == 404
    assert TOOLBAR_MARK in response.get_data(as_text=True)
    assert app.test_client().get("/_debug_toolbar/static/css/toolbar.css").status_code == 200


def test_development_leaves_redirects_alone() -> None:
    response = app_for("development").test_client().get("/write")  # login required: a redirect
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_development_leaves_json_alone() -> None:
    response = app_for("development").test_client().get("/api/v1/no-such-thing")
    assert response.mimetype == "application/problem+json"
    assert TOOLBAR_MARK not in response.get_data(as_text=True)


@pytest.mark.parametrize("app_env", ["production", "test"])
def test_the_toolbar_is_never_wired_outside_development(app_env: str) -> None:
    app = app_for(app_env)
    assert "debug_toolbar" not in app.extensions
    assert "debugtoolbar" not in app.blueprints
    assert not app.config.get("DEBUG_TB_ENABLED")
    assert not any(rule.rule.startswith("/_debug_toolbar") for rule in app.url_map.iter_rules())
    response = app.test_client().get("/no-such-page")
    assert response.status_code == 404
    assert TOOLBAR_MARK not in response.get_data(as_text=True)
    assert app.test_client().get("/_debug_toolbar/static/css/toolbar.css").status_code == 404


def test_the_page_cache_is_off_in_development_only() -> None:
    assert Settings.from_env({"APP_ENV": "development"}).page_cache is False
    assert Settings.from_env({"APP_ENV": "production"}).page_cache is True
    assert Settings.from_env({"APP_ENV": "development", "PAGE_CACHE": "true"}).page_cache is True
    development = app_for("development", RESPONSE_CACHE_MB="32")
    cache = development.extensions["response_cache"]
    assert cache.enabled is False
    assert cache.pages.max_bytes == 0, "no memory layer either, whatever RESPONSE_CACHE_MB says"
    production = app_for("production", RESPONSE_CACHE_MB="32")
    assert production.extensions["response_cache"].enabled is True
    assert production.extensions["response_cache"].pages.max_bytes == 32 * 1024 * 1024
