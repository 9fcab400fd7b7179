"""gunicorn_config.py reads every setting from the environment (loaded as gunicorn loads it)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn_config.py"


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for name in list(__import__("os").environ):
        if name.startswith("GUNICORN_") or name == "PORT":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load(monkeypatch)
    assert cfg["bind"] == "0.0.0.0:8000"
    assert cfg["worker_class"] == "gevent"
    assert cfg["workers"] >= 1
    assert cfg["max_requests"] > 0 and cfg["max_requests_jitter"] > 0
    assert cfg["graceful_timeout"] < 30, "must be shorter than compose's stop_grace_period"
    assert cfg["preload_app"] is False


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load(
        monkeypatch,
        PORT="9000",
        GUNICORN_WORKERS="3",
        GUNICORN_WORKER_CONNECTIONS="500",
        GUNICORN_MAX_REQUESTS="1234",
        GUNICORN_MAX_REQUESTS_JITTER="56",
        GUNICORN_TIMEOUT="45",
        GUNICORN_GRACEFUL_TIMEOUT="10",
        GUNICORN_KEEPALIVE="90",
        GUNICORN_BACKLOG="4096",
    )
    assert cfg["bind"] == "0.0.0.0:9000"
    assert (cfg["workers"], cfg["worker_connections"]) == (3, 500)
    assert (cfg["max_requests"], cfg["max_requests_jitter"]) == (1234, 56)
    assert (cfg["timeout"], cfg["graceful_timeout"], cfg["keepalive"], cfg["backlog"]) == (45, 10, 90, 4096)


@pytest.mark.parametrize(
    ("name", "value"),
    [("GUNICORN_WORKERS", "0"), ("GUNICORN_WORKERS", "999"), ("GUNICORN_TIMEOUT", "1"), ("PORT", "70000")],
)
def test_out_of_range_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load(monkeypatch, **{name: value})


def test_an_interrupted_worker_ends_at_once_only_when_reloading(monkeypatch: pytest.MonkeyPatch) -> None:
    """make dev's `--reload`: no graceful wait serving old code; never without reload (production)."""
    cfg = load(monkeypatch)
    exits: list[int] = []
    monkeypatch.setattr("os._exit", exits.append)

    class Worker:
        class cfg:  # gunicorn's worker.cfg
            reload = False

    cfg["worker_int"](Worker())
    assert exits == []
    Worker.cfg.reload = True
    cfg["worker_int"](Worker())
    assert exits == [0]
