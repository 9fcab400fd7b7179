"""The monitoring profile on the stack under test (`make test` starts it: scripts/monitoring.sh):
Prometheus finds every replica, worker, database and Redis, follows a rescale, fires the replica
alert and routes it to the webhook; /ops draws its graphs; Flower asks for its credentials.

Prometheus and Flower are published on 127.0.0.1 at PROMETHEUS_PORT and FLOWER_PORT (the test
project's, 9190 and 5655, so the user's own monitoring keeps 9090 and 5555).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.hardening import assert_hardened
from tests.e2e.stack import BASE_URL, compose, container_ids, create_user, login, scale, setting
from tests.polling import wait_until

PROMETHEUS = f"http://127.0.0.1:{setting('PROMETHEUS_PORT', '9090')}"
FLOWER = f"http://127.0.0.1:{setting('FLOWER_PORT', '5555')}"


def prometheus(path: str, **params: str) -> Any:
    response = requests.get(PROMETHEUS + path, params=params, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def targets_up() -> Counter:
    """How many active targets of each job (postgres and redis: job/server) answer."""
    up: Counter = Counter()
    for target in prometheus("/api/v1/targets", state="active")["activeTargets"]:
        if target["health"] == "up":
            labels = target["labels"]
            server = labels.get("server")
            up[f"{labels['job']}/{server}" if server else labels["job"]] += 1
    return up


def firing(alertname: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in prometheus("/api/v1/alerts")["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
    ]


@pytest.fixture(scope="module")
def monitored(stack: str) -> str:
    try:
        requests.get(PROMETHEUS + "/-/ready", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"Prometheus does not answer at {PROMETHEUS} ({exc}): run `scripts/monitoring.sh up` first")
    return stack


def expected_targets(web: int) -> dict[str, int]:
    return {
        "web": web,
        "worker": len(container_ids("worker")),
        "beat": 1,
        "postgres/primary": 1,
        "postgres/replica": 1,
        "redis/redis": 1,
        "redis/cache": 1,
        "alertmanager": 1,
    }


def test_every_replica_worker_database_and_redis_is_an_up_target(monitored: str) -> None:
    expected = expected_targets(len(container_ids("web")))
    assert expected["web"] >= 3 and expected["worker"] >= 2

    def all_up() -> bool:
        up = targets_up()
        return all(up[job] == count for job, count in expected.items())

    wait_until(all_up, timeout=90, interval=2, message=f"targets up: want {expected}")


def test_a_rescale_is_followed_within_60_seconds(monitored: str) -> None:
    before = len(container_ids("web"))
    try:
        scale(5)
        started = time.monotonic()
        wait_until(lambda: targets_up()["web"] == 5, timeout=60, interval=1, message="5 web targets up")
        print(f"5 web targets up {time.monotonic() - started:.0f} s after the scale-up")
    finally:
        scale(before)
    wait_until(lambda: targets_up()["web"] == before, timeout=60, interval=1, message=f"back to {before}")


@pytest.fixture
def stopped_replica(monitored: str) -> Iterator[float]:
    compose("stop", "db-replica", timeout=60)
    stopped_at = time.monotonic()
    try:
        yield stopped_at
    finally:
        compose("up", "-d", "--no-deps", "--wait", "db-replica", timeout=240)
        # The stack's later suites (chaos) need it streaming again.
        wait_until(lambda: not firing("ReplicaNotStreaming"), timeout=120, interval=2, message="alert resolved")


def test_a_stopped_replica_fires_its_alert_within_2_minutes_and_reaches_the_webhook(stopped_replica: float) -> None:
    alerts = wait_until(lambda: firing("ReplicaNotStreaming"), timeout=120, interval=2, message="ReplicaNotStreaming")
    print(f"ReplicaNotStreaming firing {time.monotonic() - stopped_replica:.0f} s after the stop")
    assert all(alert["labels"]["severity"] == "critical" for alert in alerts)

    # Alertmanager routes it to ALERT_WEBHOOK_URL: by default alert-log, one JSON line per alert.
    def logged() -> bool:
        logs = compose("logs", "--no-color", "alert-log").stdout
        return '"alertname": "ReplicaNotStreaming"' in logs and '"status": "firing"' in logs

    wait_until(logged, timeout=60, interval=2, message="the alert in alert-log's log")


def test_ops_draws_graphs_from_prometheus(monitored: str) -> None:
    admin = f"e2e-ops-{uuid.uuid4().hex[:12]}@example.com"
    create_user(admin, admin=True)
    with requests.Session() as browser:
        login(browser, admin)
        for _ in range(50):  # traffic for the request-rate panels
            assert browser.get(f"{BASE_URL}/", timeout=10).status_code == 200

        def graphs() -> str | None:
            page = browser.get(f"{BASE_URL}/ops", timeout=20)
            assert page.status_code == 200
            drawn = re.findall(r"<svg\b.*?</svg>", page.text, flags=re.S)
            with_data = [svg for svg in drawn if "<polyline" in svg or "<path" in svg]
            return page.text if len(drawn) >= 4 and len(with_data) >= 4 else None

        page = wait_until(graphs, timeout=90, interval=5, message="/ops with at least four graphs with data")
        assert "not running" not in page
        hour = browser.get(f"{BASE_URL}/ops?range=1h", timeout=20)
        assert hour.status_code == 200 and hour.text.count("<svg") >= 4


def test_flower_wants_its_credentials_and_listens_on_loopback_only(monitored: str) -> None:
    user, password = setting("FLOWER_USER", "admin"), setting("FLOWER_PASSWORD", "")
    assert password, "FLOWER_PASSWORD is set in .env"

    def answers() -> bool:
        try:
            return requests.get(FLOWER + "/", timeout=5).status_code == 401
        except requests.RequestException:
            return False

    wait_until(answers, timeout=60, interval=1, message="Flower answers 401 without credentials")
    assert requests.get(FLOWER + "/", auth=(user, "wrong-" + password), timeout=5).status_code == 401
    workers = requests.get(FLOWER + "/workers", auth=(user, password), timeout=10)
    assert workers.status_code == 200
    (port,) = [p for p in container_ports("flower") if p["target"] == 5555]
    assert port["host_ip"] == "127.0.0.1"
    (port,) = [p for p in container_ports("prometheus") if p["target"] == 9090]
    assert port["host_ip"] == "127.0.0.1"


def container_ports(service: str) -> list[dict[str, Any]]:
    """The ports ``service`` publishes, as compose resolves them."""
    config = json.loads(compose("--profile", "monitoring", "config", "--format", "json").stdout)
    ports: list[dict[str, Any]] = config["services"][service].get("ports", [])
    return ports


def test_the_monitoring_services_are_hardened_like_the_stack(monitored: str) -> None:
    config = json.loads(compose("--profile", "monitoring", "config", "--format", "json").stdout)
    profile = {name for name, svc in config["services"].items() if "monitoring" in svc.get("profiles", [])}
    # Its long-running services: postgres-role is a one-shot job and has exited.
    assert_hardened(profile - {"postgres-role"})
