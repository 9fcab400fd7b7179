"""/ops for a real administrator (logged in through the login form, session in Redis) while
Prometheus is not there: the page answers at once, says how to start it, and keeps its live
snapshot. The graphs themselves are covered without services in tests/unit/test_ops_view.py."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from app.database import db
from app.services import accounts, graphs
from tests.integration.support import integration_settings

PASSWORD = "long-enough-password"
#: Nothing listens on port 1 of the test container.
NO_PROMETHEUS = "http://127.0.0.1:1"


@pytest.fixture
def without_prometheus(app: Flask) -> Iterator[Flask]:
    """The app of the stack's databases and Redis, with a Prometheus URL where nothing answers."""
    settings = integration_settings(PROMETHEUS_URL=NO_PROMETHEUS, RATELIMIT_STORAGE_URL="memory://")
    application = create_app(settings)
    yield application
    with application.app_context():
        for engine in db.engines.values():
            engine.dispose()


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found, "the form carries a CSRF token"
    return found.group(1)


def test_ops_without_prometheus_says_so_and_keeps_its_snapshot(without_prometheus: Flask) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    with without_prometheus.app_context():
        accounts.register_user(email, "Operator", PASSWORD, is_admin=True)
    client = without_prometheus.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    login = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert login.status_code == 302, login.get_data(as_text=True)

    for query in ("", "?range=1h", "?range=nonsense"):
        started = time.monotonic()
        page = client.get(f"/ops{query}")
        assert time.monotonic() - started < graphs.TOTAL_BUDGET, "no hanging on a missing Prometheus"
        html = page.get_data(as_text=True)
        assert page.status_code == 200, html
        assert "Prometheus is not running" in html and "make monitoring" in html
        assert NO_PROMETHEUS in html, "the page names the URL it tried"
        assert "Web replicas" in html and "replica lag" in html, "the live snapshot is still there"
