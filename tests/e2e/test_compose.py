"""The compose file is valid and keeps the scaling contract."""

from __future__ import annotations

import json

from tests.e2e.stack import compose


def config() -> dict:
    return json.loads(compose("config", "--format", "json").stdout)


def test_compose_config_is_valid() -> None:
    compose("config", "--quiet")  # fails with compose's message when the file is invalid


def test_only_nginx_publishes_a_port_and_on_loopback() -> None:
    services = config()["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"nginx"}
    ports = services["nginx"]["ports"]
    assert {port["target"] for port in ports} == {8080, 8443}  # HTTP and HTTPS, unprivileged inside
    assert {port["host_ip"] for port in ports} == {"127.0.0.1"}


def test_scalable_services_have_no_container_name() -> None:
    services = config()["services"]
    for name in ("web", "worker"):
        assert "container_name" not in services[name], name


def test_app_services_wait_for_the_migration() -> None:
    services = config()["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = config()["services"]
    for name, svc in services.items():
        if name in {"migrate", "test"} or "profiles" in svc:
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
