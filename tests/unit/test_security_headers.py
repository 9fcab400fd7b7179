"""Security headers: every kind of response carries them, and the policies are what they claim.

The app reaches no service here: the page is an error page, the API responses are the
document and a refusal, and the cached response is served from a process's memory (the
layer in front of Flask) after being put there by hand.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from app.api.problems import PROBLEM_MIMETYPE
from app.config import Settings
from app.response_cache import Entry, ResponseCache, etag_of
from app.security_headers import SecurityHeaders
from tests.support import UNIT_ENV, offline_app

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"
PRODUCTION_ENV = {**UNIT_ENV, "APP_ENV": "production", "DATABASE_URL": "postgresql://u:a-real-password@db/x"}


def directives(policy: str) -> dict[str, set[str]]:
    """``"a x y; b z"`` -> ``{"a": {"x", "y"}, "b": {"z"}}``."""
    parsed = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *values = directive.split()
        assert name not in parsed, f"{name} twice in {policy!r}"
        parsed[name] = set(values)
    return parsed


def assert_strict(policy: str) -> None:
    """Nothing from elsewhere, no inline code, no eval, no framing."""
    csp = directives(policy)
    assert csp["default-src"] == {"'none'"}
    assert csp["frame-ancestors"] == {"'none'"}
    assert csp["base-uri"] == {"'none'"}
    assert csp["form-action"] == {"'self'"}
    for name, values in csp.items():
        assert not values & {"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"}, (name, values)
        assert all(v.startswith("'") or v == "data:" for v in values), f"{name} allows a host: {values}"
        if name == "img-src":
            assert values <= {"'self'", "data:"}
        elif name not in {"default-src", "frame-ancestors", "base-uri"}:
            assert values == {"'self'"}, (name, values)


def assert_secured(response: TestResponse) -> dict[str, set[str]]:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers, "HSTS is nginx's (it knows about TLS)"
    assert len(response.headers.getlist("Content-Security-Policy")) == 1
    policy = response.headers["Content-Security-Policy"]
    assert_strict(policy)
    return directives(policy)


@pytest.fixture
def app() -> Flask:
    return offline_app()


def test_a_page_runs_no_script_at_all(app: Flask) -> None:
    page = app.test_client().get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    csp = assert_secured(page)
    assert "script-src" not in csp and "connect-src" not in csp, "pages have no script: default-src 'none' holds"
    assert csp["style-src"] == {"'self'"}


def test_api_json_and_problems_carry_them(app: Flask) -> None:
    client = app.test_client()
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.mimetype == "application/json"
    assert "script-src" not in assert_secured(document)
    refused = client.get("/api/v1/nope")
    assert refused.status_code == 404 and refused.mimetype == PROBLEM_MIMETYPE
    assert "script-src" not in assert_secured(refused)
    wrong_method = client.put("/api/v1/articles")
    assert wrong_method.status_code == 405 and "Allow" in wrong_method.headers
    assert_secured(wrong_method)


def test_a_static_file_served_by_the_app_carries_them(app: Flask) -> None:
    response = app.test_client().get("/static/css/site.css")
    assert response.status_code == 200
    assert_secured(response)
    response.close()


def test_the_docs_page_has_its_own_policy_still_same_origin_only(app: Flask) -> None:
    docs = app.test_client().get("/api/v1/docs")
    assert docs.status_code == 200 and docs.mimetype == "text/html"
    csp = assert_secured(docs)
    assert csp["script-src"] == {"'self'"}, "Swagger UI's scripts, from this server"
    assert csp["connect-src"] == {"'self'"}, "it fetches the OpenAPI document"
    assert csp["img-src"] == {"'self'", "data:"}, "its stylesheet's icons are data: URLs"
    html = docs.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script would be refused"


@pytest.fixture
def live_socket() -> Iterator[socket.socket]:
    ours, server = socket.socketpair()
    yield ours
    ours.close()
    server.close()


def test_a_cached_response_answered_from_memory_carries_them(app: Flask, live_socket: socket.socket) -> None:
    cache: ResponseCache = app.extensions["response_cache"]
    cache.pages.go_live(live_socket)
    body = b"<p>cached page</p>"
    headers = [("Content-Type", "text/html; charset=utf-8"), ("ETag", etag_of(body))]
    entry = Entry("latest", 1, time.time() + 30, "200 OK", headers, body, etag_of(body), None)
    assert cache.pages.put("/cached", entry, cache.pages.generation)

    response = app.test_client().get("/cached")
    assert (response.status_code, response.data, response.headers["X-Cache"]) == (200, body, "hit")
    assert_secured(response)
    assert (
        response.headers["Content-Security-Policy"] == app.test_client().get("/nope").headers["Content-Security-Policy"]
    ), "the same policy as the pages Flask renders"
    not_modified = app.test_client().get("/cached", headers={"If-None-Match": etag_of(body)})
    assert not_modified.status_code == 304
    assert_secured(not_modified)


def test_production_and_test_use_the_strict_policies() -> None:
    production = Settings.from_env(PRODUCTION_ENV)
    production.check_production()  # a valid production configuration
    for settings in (production, Settings.from_env(UNIT_ENV)):
        headers = SecurityHeaders.for_settings(settings)
        for policy in (dict(headers.default)["Content-Security-Policy"], dict(headers.docs)["Content-Security-Policy"]):
            assert_strict(policy)


def test_development_relaxes_the_policy_for_the_debug_toolbar_only_there() -> None:
    app = create_app(Settings.from_env({**UNIT_ENV, "APP_ENV": "development"}))
    page = app.test_client().get("/no-such-page")
    csp = directives(page.headers["Content-Security-Policy"])
    assert "'unsafe-inline'" in csp["script-src"] and "'unsafe-inline'" in csp["style-src"]
    assert csp["frame-ancestors"] == {"'none'"} and csp["default-src"] == {"'none'"}
    assert page.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_script_or_style(template: Path) -> None:
    """The strict policy refuses inline code; a template with some would break in browsers only."""
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.IGNORECASE), "inline <script>"
    assert not re.search(r"<style\b", html, re.IGNORECASE), "inline <style>"
    assert not re.search(r"""\sstyle\s*=\s*["']""", html, re.IGNORECASE), "a style attribute"
    assert not re.search(r"""\son[a-z]+\s*=\s*["']""", html, re.IGNORECASE), "an inline event handler"
    assert "javascript:" not in html.lower()
