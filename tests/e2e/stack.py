"""Reaching the stack under test: `docker compose` in its project, nginx at its URL, and
the CLI, psql and container helpers the end-to-end tests share (fixtures are in conftest.py).

The project and the URL come from the environment that `make test` (scripts/test.sh) sets:
``COMPOSE_PROJECT_NAME`` (its own project, never the user's `newsdesk`) and ``NEWSDESK_URL``
(its own nginx port). Other settings are read as compose reads them: the environment first,
then the project's `.env`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
ENV = {key: value for key, value in dotenv_values(ROOT / ".env").items() if value is not None}


def setting(name: str, default: str) -> str:
    """A setting as compose interpolates it: the environment wins over `.env`."""
    return os.environ.get(name) or ENV.get(name) or default


#: The compose project under test (empty: none was chosen, and compose would use the user's).
PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "")
BASE_URL = os.environ.get("NEWSDESK_URL", f"http://127.0.0.1:{setting('HTTP_PORT', '8080')}").rstrip("/")
#: nginx's HTTPS port, and the CA its certificate chains to (make up's local one, unless TLS_CERT names another).
HTTPS_URL = f"https://localhost:{setting('HTTPS_PORT', '8443')}"
LOCAL_CA = ROOT / "tls" / "ca.pem"
PG_USER = setting("POSTGRES_USER", "newsdesk")
PG_DB = setting("POSTGRES_DB", "newsdesk")


def compose(
    *args: str, check: bool = True, timeout: float = 180, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run `docker compose ARGS` in the project directory (the project: COMPOSE_PROJECT_NAME)."""
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
    """Run ``web`` replicas and ``workers`` workers (default: as many workers as now, at least 2)."""
    workers = workers if workers is not None else len(container_ids("worker")) or 2
    compose("up", "-d", "--no-recreate", "--scale", f"web={web}", "--scale", f"worker={workers}", timeout=300)


def create_user(email: str, password: str = "e2e-password-123", name: str = "E2E Writer", admin: bool = False) -> None:
    args = ["users", "create", "--email", email, "--name", name, "--password", password]
    flask_cmd(*args, *(["--admin"] if admin else []))


def create_key(email: str, name: str = "e2e") -> str:
    return flask_cmd("keys", "create", "--email", email, "--name", name).strip().splitlines()[-1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def psql_scalar(sql: str, service: str = "db") -> str:
    return compose(
        "exec", "-T", service, "psql", "-v", "ON_ERROR_STOP=1", "-qtAX", "-U", PG_USER, "-d", PG_DB, "-c", sql
    ).stdout.strip()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no csrf_token in the form"
    return match.group(1)


def login(browser: requests.Session, email: str, password: str = "e2e-password-123") -> None:
    """Log ``browser`` in through the login form (with its CSRF token), as create_user's account."""
    token = csrf_token(browser.get(f"{BASE_URL}/login", timeout=10).text)
    response = browser.post(
        f"{BASE_URL}/login",
        data={"csrf_token": token, "email": email, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.status_code
