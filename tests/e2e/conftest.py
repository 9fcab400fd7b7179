"""End-to-end fixtures: the running compose stack, reached through nginx and `docker compose`."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.polling import wait_until  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def _env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    path = ROOT / ".env"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


ENV = _env_file()
BASE_URL = os.environ.get("NEWSDESK_URL", f"http://127.0.0.1:{ENV.get('HTTP_PORT', '8080')}").rstrip("/")


def compose(
    *args: str, check: bool = True, timeout: float = 180, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run `docker compose ARGS` in the project directory."""
    proc = subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker compose {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def flask_cmd(*args: str, input: str | None = None) -> str:
    """Run a `flask` CLI command in a web replica and return its stdout."""
    return compose("exec", "-T", "web", "flask", *args, input=input).stdout


def container_ids(service: str) -> list[str]:
    return compose("ps", "-q", service).stdout.split()


def inspect(container: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def hostnames(service: str) -> set[str]:
    return {inspect(cid)["Config"]["Hostname"] for cid in container_ids(service)}


def served_by(session: requests.Session, n: int, path: str = "/healthz") -> Counter:
    counts: Counter = Counter()
    for _ in range(n):
        response = session.get(BASE_URL + path, timeout=10)
        assert response.status_code == 200, response.text
        counts[response.headers["X-Served-By"]] += 1
    return counts


def scale(web: int, workers: int | None = None) -> None:
    workers = workers if workers is not None else len(container_ids("worker")) or 2
    compose("up", "-d", "--no-recreate", "--scale", f"web={web}", "--scale", f"worker={workers}", timeout=300)


@pytest.fixture(scope="session")
def stack() -> str:
    """The stack must be up (`make up`); fail fast with a clear message otherwise."""
    try:
        requests.get(BASE_URL + "/healthz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"the stack does not answer at {BASE_URL} ({exc}); run `make up` first")
    return BASE_URL


@pytest.fixture
def http() -> requests.Session:
    with requests.Session() as session:
        yield session


def create_user(email: str, password: str = "e2e-password-123", name: str = "E2E Writer", admin: bool = False) -> None:
    args = ["users", "create", "--email", email, "--name", name, "--password", password]
    flask_cmd(*args, *(["--admin"] if admin else []))


def create_key(email: str, name: str = "e2e") -> str:
    return flask_cmd("keys", "create", "--email", email, "--name", name).strip().splitlines()[-1]


@pytest.fixture
def api_key(stack: str) -> str:
    """A fresh user's API key (a new account per test)."""
    import uuid

    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    create_user(email)
    return create_key(email)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def psql_scalar(sql: str, service: str = "db") -> str:
    return compose(
        "exec",
        "-T",
        service,
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-qtAX",
        "-U",
        ENV.get("POSTGRES_USER", "newsdesk"),
        "-d",
        ENV.get("POSTGRES_DB", "newsdesk"),
        "-c",
        sql,
    ).stdout.strip()


def csrf_token(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no csrf_token in the form"
    return match.group(1)
