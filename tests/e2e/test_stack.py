"""The stack end to end: load spread, scaling without nginx reloads, replication, readiness,
the broker path and the one-shot migration."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

from tests.e2e.stack import (
    BASE_URL,
    PG_DB,
    PG_USER,
    compose,
    container_ids,
    flask_cmd,
    hostnames,
    inspect,
    psql_scalar,
    scale,
    served_by,
)
from tests.polling import wait_until


def all_seen(session: requests.Session, expected: set[str], batch: int = 60) -> bool:
    return set(served_by(session, batch)) == expected


def test_requests_spread_over_three_replicas(stack: str, http: requests.Session) -> None:
    scale(3)
    expected = hostnames("web")
    assert len(expected) == 3
    wait_until(lambda: all_seen(http, expected), timeout=30, message="all 3 replicas serve")
    counts = served_by(http, 300)
    assert set(counts) == expected, counts
    assert min(counts.values()) >= 0.15 * 300, counts


@dataclass
class Load:
    """What background GETs met: how many were sent, and every failure."""

    sent: int = 0
    failures: list[str] = field(default_factory=list)


@contextlib.contextmanager
def background_gets(paths: list[str], clients: int = 4) -> Iterator[Load]:
    """Keep ``clients`` sessions GETting ``paths`` through nginx for the duration of the block."""
    load = Load()
    done = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not done.is_set():
                path = paths[load.sent % len(paths)]
                try:
                    response = session.get(BASE_URL + path, timeout=10)
                    if response.status_code != 200:
                        load.failures.append(f"{path} {response.status_code}: {response.text[:100]}")
                except requests.RequestException as exc:
                    load.failures.append(f"{path} {exc!r}")
                load.sent += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        done.set()
        for thread in threads:
            thread.join()


def test_scaling_is_followed_without_restarting_nginx(stack: str, http: requests.Session) -> None:
    (nginx,) = container_ids("nginx")
    before = inspect(nginx)["State"]
    scale(3)
    try:
        scale(5)
        expected = hostnames("web")
        assert len(expected) == 5
        wait_until(lambda: all_seen(http, expected, batch=50), timeout=30, message="all 5 replicas serve")
        after = inspect(nginx)["State"]
        assert after["StartedAt"] == before["StartedAt"] and after["Running"], "nginx was restarted"
    finally:
        with background_gets(["/healthz"]) as load:
            scale(3)
            remaining = hostnames("web")
            wait_until(lambda: all_seen(http, remaining, batch=30), timeout=30, message="back to 3 replicas")
    assert load.sent > 100, "the load during scale-down was too small to mean anything"
    assert load.failures == [], (
        f"{len(load.failures)} failed GETs of {load.sent} while scaling down: {load.failures[:5]}"
    )
    assert inspect(nginx)["State"]["StartedAt"] == before["StartedAt"]


def test_a_killed_replica_costs_no_failed_get(stack: str, http: requests.Session) -> None:
    scale(3)
    victim = container_ids("web")[0]
    try:
        with background_gets(["/healthz", "/", "/popular"]) as load:
            wait_until(lambda: load.sent > 50, timeout=30, message="load running")
            subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
            killed_at = load.sent
            wait_until(lambda: load.sent > killed_at + 300, timeout=60, message="load continued after the kill")
    finally:
        scale(3)  # bring the killed replica back
    assert load.failures == [], f"{len(load.failures)} failed GETs of {load.sent} around a kill: {load.failures[:5]}"
    wait_until(lambda: all_seen(http, hostnames("web")), timeout=30, message="all replicas serve again")


def test_replica_streams_writes_and_refuses_its_own(stack: str) -> None:
    token = uuid.uuid4().hex
    psql_scalar("CREATE TABLE IF NOT EXISTS e2e_replication (token text PRIMARY KEY, at timestamptz DEFAULT now())")
    psql_scalar(f"INSERT INTO e2e_replication (token) VALUES ('{token}')")
    try:
        wait_until(
            lambda: psql_scalar(f"SELECT count(*) FROM e2e_replication WHERE token = '{token}'", "db-replica") == "1",
            timeout=5,
            interval=0.1,
            message="row replicated",
        )
        refused = compose(
            "exec",
            "-T",
            "db-replica",
            "psql",
            "-U",
            PG_USER,
            "-d",
            PG_DB,
            "-c",
            f"INSERT INTO e2e_replication (token) VALUES ('x{token}')",
            check=False,
        )
        assert refused.returncode != 0
        assert "read-only" in refused.stderr
    finally:
        psql_scalar(f"DELETE FROM e2e_replication WHERE token = '{token}'")


def readyz(index: int = 1) -> tuple[int, dict]:
    code = (
        "import json, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=10)\n"
        "    print(r.status, r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code, e.read().decode())\n"
    )
    out = compose("exec", "-T", "--index", str(index), "web", "python", "-c", code).stdout
    status, _, body = out.strip().partition(" ")
    return int(status), json.loads(body)


def test_readyz_reports_every_dependency_and_degrades_without_the_replica(stack: str) -> None:
    status, body = readyz()
    assert status == 200, body
    assert body["status"] == "ok", body
    assert set(body["checks"]) == {"db", "db_replica", "redis", "cache"}
    for name, check in body["checks"].items():
        assert check["ok"] is True, (name, check)
        assert check["latency_ms"] >= 0
    assert body["checks"]["db_replica"]["lag_bytes"] is not None

    compose("stop", "db-replica")
    try:

        def degraded() -> dict | None:
            status, body = readyz()
            return body if status == 200 and body["status"] == "degraded" else None

        body = wait_until(degraded, timeout=30, interval=0.5, message="readyz degraded without db-replica")
        assert body["checks"]["db_replica"]["ok"] is False
        assert body["checks"]["db"]["ok"] is True
        # Reads keep working through nginx while the replica is down.
        assert requests.get(BASE_URL + "/healthz", timeout=10).status_code == 200
    finally:
        compose("start", "db-replica")
    wait_until(lambda: readyz()[1]["status"] == "ok", timeout=60, interval=0.5, message="readyz ok again")


def test_operator_endpoints_are_not_public(stack: str) -> None:
    for path in ("/readyz", "/readyz/", "/metrics"):
        assert requests.get(BASE_URL + path, timeout=10).status_code == 404, path
    assert requests.get(BASE_URL + "/healthz", timeout=10).status_code == 200


def test_responses_carry_request_id_and_replica(stack: str) -> None:
    rid = f"e2e-{uuid.uuid4().hex}"
    response = requests.get(BASE_URL + "/healthz", headers={"X-Request-ID": rid}, timeout=10)
    assert response.headers["X-Request-ID"] == rid
    assert response.headers["X-Served-By"] in hostnames("web")
    generated = requests.get(BASE_URL + "/healthz", timeout=10).headers["X-Request-ID"]
    assert len(generated) >= 16 and generated != rid
    assert "nginx/" not in response.headers.get("Server", "")


def test_a_task_sent_from_web_runs_on_a_worker(stack: str) -> None:
    answer = json.loads(flask_cmd("tasks", "smoke").strip().splitlines()[-1])
    assert answer["result"]["payload"] == "hello"
    assert answer["result"]["worker"] in hostnames("worker")


def test_the_migration_ran_exactly_once(stack: str) -> None:
    (migrate,) = compose("ps", "-a", "-q", "migrate").stdout.split()
    state = inspect(migrate)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    migrate_logs = compose("logs", "--no-color", "migrate").stdout
    assert "migrations are up to date" in migrate_logs
    web_logs = compose("logs", "--no-color", "web").stdout
    assert "alembic.runtime.migration" not in web_logs
    assert "Running upgrade" not in web_logs
