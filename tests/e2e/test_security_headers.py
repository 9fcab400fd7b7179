"""Security headers through nginx: pages (rendered, shared, and answered from a process's
memory), API JSON, problems, and the API docs page with its own policy (app/security_headers.py)."""

from __future__ import annotations

import time

import requests

from tests.e2e.stack import BASE_URL

TIMEOUT = 10


def policy(response: requests.Response) -> dict[str, set[str]]:
    """The response's security headers checked; its Content-Security-Policy by directive."""
    assert response.headers.get("X-Content-Type-Options") == "nosniff", response.url
    assert response.headers.get("Referrer-Policy") == "same-origin", response.url
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"{response.url} has no Content-Security-Policy"
    directives = {name: set(values) for name, *values in (part.split() for part in csp.split(";") if part.strip())}
    assert directives["default-src"] == {"'none'"} and directives["frame-ancestors"] == {"'none'"}, csp
    assert not any("'unsafe-inline'" in values or "'unsafe-eval'" in values for values in directives.values()), csp
    return directives


def test_every_kind_of_answer_carries_the_headers(stack: str, http: requests.Session) -> None:
    sources: set[str] = set()
    deadline = time.monotonic() + 30
    while "hit" not in sources and time.monotonic() < deadline:
        page = http.get(BASE_URL + "/", timeout=TIMEOUT)
        assert page.status_code == 200
        assert "script-src" not in policy(page), "pages run no script"
        sources.add(page.headers["X-Cache"])
    assert "hit" in sources, f"no answer from a process's memory within 30 s: {sources}"

    listing = http.get(BASE_URL + "/api/v1/articles", timeout=TIMEOUT)
    assert listing.status_code == 200 and listing.headers["Content-Type"].startswith("application/json")
    policy(listing)
    missing = http.get(BASE_URL + "/api/v1/articles/999999999", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    policy(missing)


def test_the_docs_page_runs_only_its_own_scripts(stack: str, http: requests.Session) -> None:
    docs = http.get(BASE_URL + "/api/v1/docs", timeout=TIMEOUT)
    assert docs.status_code == 200
    directives = policy(docs)
    assert directives["script-src"] == {"'self'"} and directives["connect-src"] == {"'self'"}
    assert "<script>" not in docs.text, "an inline script would be refused"
