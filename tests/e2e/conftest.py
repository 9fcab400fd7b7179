"""End-to-end fixtures: the stack under test (helpers to reach it are in tests/e2e/stack.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.stack import BASE_URL, PROJECT, create_key, create_user


@pytest.fixture(scope="session")
def stack() -> str:
    """The stack under test answers at BASE_URL, in a compose project chosen on purpose.

    These tests scale, stop and kill services and write data: `make test-e2e` runs them in a
    project of their own. Run by hand, name the project (COMPOSE_PROJECT_NAME) and its URL
    (NEWSDESK_URL) rather than letting compose pick the user's.
    """
    if not PROJECT:
        pytest.fail("COMPOSE_PROJECT_NAME is not set: run the end-to-end tests with `make test-e2e`")
    try:
        requests.get(BASE_URL + "/healthz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"project {PROJECT} does not answer at {BASE_URL} ({exc}); run `make test-e2e`")
    return BASE_URL


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def api_key(stack: str) -> str:
    """A fresh user's API key (a new account per test)."""
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    create_user(email)
    return create_key(email)
