"""Logical dumps end to end (scripts/dump.sh: `make dump`, `make load-dump`) on the stack under test.

An article written before the dump is there after the load, one written after it is gone: on the
primary, on the replica (which follows the load by streaming replication), and through nginx,
also for a reader whose page the cache held before the load. The load replaces the database of the
stack under test (its own project, see conftest's ``stack``): accounts made by earlier tests were
in the dump and survive it; sessions do not (the load empties Redis).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import BASE_URL, ROOT, bearer, container_ids, psql_scalar
from tests.polling import wait_until

API = BASE_URL + "/api/v1"
TIMEOUT = 10
#: The load stops and restarts web, worker and beat and waits until they are healthy.
LOAD_TIMEOUT = 600


def dump_script(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run scripts/dump.sh ARGS in the project of COMPOSE_PROJECT_NAME, with no terminal to ask on."""
    proc = subprocess.run(
        [str(ROOT / "scripts" / "dump.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LOAD_TIMEOUT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert proc.returncode == 0, f"scripts/dump.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
    return proc


@pytest.fixture
def dumps(stack: str) -> Iterator[list[Path]]:
    """The dump files a test makes (it appends their paths): removed afterwards, whatever happened."""
    made: list[Path] = []
    yield made
    for path in made:
        path.unlink(missing_ok=True)


def create_article(http: requests.Session, key: str, title: str) -> int:
    response = http.post(
        f"{API}/articles", json={"title": title, "body": "Body text."}, headers=bearer(key), timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


#: /readyz of a web replica, asked inside it (nginx keeps the per-replica endpoints private).
READYZ = (
    "import urllib.error, urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=5).status)\n"
    "except (urllib.error.URLError, OSError) as exc:\n"
    "    print(getattr(exc, 'code', 0))\n"
)


def replicas_ready() -> bool:
    """Every web replica answers /readyz with 200 (primary, replica, Redis and cache reachable)."""
    # By container id: after a deploy or a rescale the replicas' compose indexes are not 1..N.
    replicas = container_ids("web")
    statuses = [
        subprocess.run(
            ["docker", "exec", replica, "python", "-c", READYZ], capture_output=True, text=True
        ).stdout.strip()
        for replica in replicas
    ]
    return bool(replicas) and statuses == ["200"] * len(replicas)


def rows(article_id: int, service: str = "db") -> str:
    return psql_scalar(f"SELECT count(*) FROM articles WHERE id = {article_id}", service=service)


def test_a_dump_loaded_back_brings_the_data_back_to_its_time(
    http: requests.Session, api_key: str, dumps: list[Path]
) -> None:
    tag = uuid.uuid4().hex[:10]
    kept = create_article(http, api_key, f"Dumped {tag}")

    out = dump_script("dump").stdout.strip().splitlines()
    assert out, "scripts/dump.sh dump printed no path"
    dump = ROOT / out[-1]
    dumps.append(dump)
    assert dump.name.startswith("newsdesk-") and dump.suffix == ".dump", dump
    assert dump.read_bytes()[:5] == b"PGDMP", "not a pg_dump custom-format archive"
    assert not list(dump.parent.glob(".*.partial")), "a temporary file was left beside the dump"

    dropped = create_article(http, api_key, f"After the dump {tag}")
    # An anonymous read puts the page in the cache: the load must not leave it there.
    assert http.get(f"{API}/articles/{dropped}", timeout=TIMEOUT).status_code == 200
    assert rows(dropped) == "1"

    dump_script("load", str(dump), env={"FORCE": "1", "YES": "1"})

    assert rows(kept) == "1"
    assert rows(dropped) == "0"
    wait_until(
        lambda: rows(kept, "db-replica") == "1" and rows(dropped, "db-replica") == "0",
        timeout=60,
        message="the replica shows the loaded data",
    )
    wait_until(replicas_ready, timeout=120, interval=1, message="/readyz 200 on every web replica")
    assert http.get(f"{BASE_URL}/healthz", timeout=TIMEOUT).status_code == 200
    assert http.get(f"{API}/articles/{kept}", headers=bearer(api_key), timeout=TIMEOUT).status_code == 200
    assert http.get(f"{API}/articles/{dropped}", headers=bearer(api_key), timeout=TIMEOUT).status_code == 404
    assert http.get(f"{API}/articles/{dropped}", timeout=TIMEOUT).status_code == 404


def test_load_refuses_a_stack_with_articles_without_force(dumps: list[Path]) -> None:
    """A stack with articles (`make up` seeds some) is replaced only with FORCE=1: nothing changes."""
    count = psql_scalar("SELECT count(*) FROM articles")
    assert int(count) > 0, "the stack under test has no articles to protect"
    not_a_dump = ROOT / "backups" / f"newsdesk-refused-{uuid.uuid4().hex[:8]}.dump"
    not_a_dump.parent.mkdir(exist_ok=True)
    dumps.append(not_a_dump)
    not_a_dump.write_bytes(b"PGDMP")
    proc = dump_script("load", str(not_a_dump), env={"YES": "1", "FORCE": "0"}, check=False)
    assert proc.returncode != 0
    assert "FORCE=1" in proc.stderr, proc.stderr
    assert psql_scalar("SELECT count(*) FROM articles") == count
