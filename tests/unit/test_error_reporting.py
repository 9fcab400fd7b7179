"""Sentry (app.error_reporting): off and not even imported without a DSN; with one, an unhandled
error is reported once, tagged with the request id, and the visitor still gets the 500 page."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from celery.signals import task_postrun, task_prerun
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from app import create_app
from app.config import ConfigError, Settings
from app.error_reporting import init_error_reporting
from tests.fake_task import FakeTask
from tests.support import UNIT_ENV

ROOT = Path(__file__).resolve().parents[2]
#: A well-formed DSN whose host is never contacted: the tests swap in CapturingTransport.
DSN = "http://public@127.0.0.1:9/1"


class CapturingTransport(Transport):
    """Keeps what the SDK would send, in this thread, instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for envelope in self.envelopes if (event := envelope.get_event()) is not None]


@pytest.fixture
def sentry_off_afterwards() -> Iterator[None]:
    """Sentry's client is process-wide: the next test starts without one."""
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def dsn_settings(**extra: str) -> Settings:
    return Settings.from_env({**UNIT_ENV, "SENTRY_DSN": DSN, **extra})


@pytest.mark.usefixtures("sentry_off_afterwards")
def test_an_unhandled_error_is_reported_once_with_the_request_id_and_the_500_page_is_served() -> None:
    app = create_app(dsn_settings())

    @app.get("/test-boom")
    def boom() -> str:
        raise RuntimeError("boom for Sentry")

    client = sentry_sdk.get_client()
    assert client.is_active(), "create_app initialised Sentry from SENTRY_DSN"
    client.transport.kill()  # the SDK's HTTP transport never sent anything: nothing happened yet
    client.transport = transport = CapturingTransport(client.options)

    response = app.test_client().get("/test-boom", headers={"X-Request-ID": "rid-sentry-1"})

    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "The error has been logged" in page, "the app's own 500 page"
    assert response.headers["X-Request-ID"] == "rid-sentry-1"
    [event] = transport.events
    assert event["tags"]["request_id"] == "rid-sentry-1"
    assert event["exception"]["values"][-1]["value"] == "boom for Sentry"
    assert event["environment"] == "test", "SENTRY_ENVIRONMENT defaults to APP_ENV"
    assert not client.should_send_default_pii()
    assert "cookies" not in event.get("request", {}) and "ip_address" not in event.get("user", {})


@pytest.mark.usefixtures("sentry_off_afterwards")
def test_an_error_in_a_task_carries_the_request_id_of_the_request_that_sent_it() -> None:
    import worker.signals  # noqa: F401  (connects the handlers that bind the task's context)

    transport = CapturingTransport()
    assert init_error_reporting(dsn_settings(), transport=transport)
    task = FakeTask("tests.sentry.task", request_id="rid-from-headers")

    task_prerun.send(sender=task, task_id="t1", task=task, args=(), kwargs={})
    try:
        raise ValueError("task failed")
    except ValueError:
        sentry_sdk.capture_exception()
    finally:
        task_postrun.send(sender=task, task_id="t1", task=task, args=(), kwargs={}, retval=None, state="FAILURE")
    sentry_sdk.capture_message("after the task")

    first, after = transport.events
    assert first["tags"]["request_id"] == "rid-from-headers"
    assert "request_id" not in after.get("tags", {}), "no request, no tag"


def test_without_a_dsn_nothing_is_initialised_or_even_imported() -> None:
    settings = Settings.from_env(UNIT_ENV)
    assert settings.sentry_dsn == ""
    assert init_error_reporting(settings) is False
    # A fresh interpreter: this one has imported the SDK for the tests above.
    code = (
        "import sys\n"
        "from tests.support import offline_app\n"
        "app = offline_app()\n"
        "app.test_client().get('/healthz')\n"
        "assert 'sentry_sdk' not in sys.modules, 'sentry_sdk was imported'\n"
    )
    env = {**os.environ, **UNIT_ENV}
    env.pop("SENTRY_DSN", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("rate", ["-0.1", "1.5", "half"])
def test_the_traces_sample_rate_must_be_between_0_and_1(rate: str) -> None:
    with pytest.raises(ConfigError, match="SENTRY_TRACES_SAMPLE_RATE"):
        Settings.from_env({"SENTRY_TRACES_SAMPLE_RATE": rate})


def test_the_sentry_environment_can_differ_from_app_env() -> None:
    assert Settings.from_env({"APP_ENV": "development"}).sentry_environment == "development"
    assert Settings.from_env({"SENTRY_ENVIRONMENT": "staging"}).sentry_environment == "staging"
