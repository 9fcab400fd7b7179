"""The Prometheus client (app.services.prometheus) and the graphs' fetching (app.services.graphs):
answers parsed in the shape the HTTP API documents, a stopped or stuck Prometheus found out fast,
and no further query sent once it is."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from app.config import ConfigError, Settings
from app.services import graphs
from app.services.prometheus import (
    PrometheusClient,
    PrometheusError,
    Series,
    answer_data,
    parse_alerts,
    parse_matrix,
)
from tests.unit.fake_prometheus import ALERTS_ANSWER, RANGE_ANSWER, closed_port, fake_prometheus, url_of


def test_a_matrix_is_parsed_with_non_finite_values_left_out() -> None:
    series = parse_matrix(RANGE_ANSWER["data"])
    assert [s.labels for s in series] == [{"hostname": "web-1"}, {"hostname": "web-2"}], "sorted; web-3 all NaN"
    assert series[0].points == ((1700000000.0, 1.0), (1700000010.0, 1.5), (1700000030.0, 2.0))
    assert series[1].points == ((1700000000.0, 2.5), (1700000020.0, 3.0), (1700000040.0, 4.75))


@pytest.mark.parametrize(
    "data",
    [
        {"resultType": "vector", "result": []},
        {"resultType": "matrix"},
        {"resultType": "matrix", "result": [{"metric": {}, "values": [["x", "1"]]}]},
        {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "one"]]}]},
        None,
    ],
)
def test_an_answer_of_another_shape_is_a_prometheus_error(data: Any) -> None:
    with pytest.raises(PrometheusError) as caught:
        parse_matrix(data)
    assert not caught.value.unreachable


def test_an_error_answer_is_a_prometheus_error_with_its_reason() -> None:
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}).encode()
    with pytest.raises(PrometheusError, match="bad_data: parse error at char 5"):
        answer_data(body)
    with pytest.raises(PrometheusError, match="not JSON"):
        answer_data(b"<html>nginx</html>")


def test_only_firing_alerts_are_listed_the_most_severe_first() -> None:
    alerts = parse_alerts(ALERTS_ANSWER["data"])
    assert [(a.name, a.severity) for a in alerts] == [("WebDown", "critical"), ("ReplicaLagging", "warning")]
    assert alerts[0].summary == "A web replica stopped answering <scrapes>"
    assert alerts[1].since == datetime(2025, 1, 2, 12, 4, 5, 123456, tzinfo=UTC), "nanoseconds read"
    assert parse_alerts({"alerts": []}) == []


@pytest.fixture
def prometheus() -> Iterator[ThreadingHTTPServer]:
    with fake_prometheus() as server:
        yield server


def test_the_client_asks_over_http_and_parses_the_answer(prometheus: ThreadingHTTPServer) -> None:
    client = PrometheusClient(url_of(prometheus))
    series = client.query_range("up", 1700000000, 1700000900, 10)
    assert [s.labels["hostname"] for s in series] == ["web-1", "web-2"]
    assert prometheus.seen == [  # type: ignore[attr-defined]
        ("/api/v1/query_range", {"query": "up", "start": "1700000000.000", "end": "1700000900.000", "step": "10"})
    ]
    assert [a.name for a in client.firing_alerts()] == ["WebDown", "ReplicaLagging"]


def test_a_bad_query_is_an_error_but_not_unreachable(prometheus: ThreadingHTTPServer) -> None:
    with pytest.raises(PrometheusError, match="HTTP 400: bad_data: 1:1: parse error") as caught:
        PrometheusClient(url_of(prometheus)).query_range("bad", 0, 60, 10)
    assert not caught.value.unreachable


def test_a_stopped_prometheus_is_unreachable_at_once() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(PrometheusError, match="cannot reach") as caught:
        PrometheusClient(url, timeout=1.0).firing_alerts()
    assert caught.value.unreachable
    assert url in str(caught.value), "the message names the URL tried"
    assert time.monotonic() - started < 1.0


def test_a_prometheus_that_never_answers_times_out() -> None:
    """The connection is accepted (by the kernel, into the backlog) but no answer ever comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(PrometheusError) as caught:
            PrometheusClient(url, timeout=0.3).query_range("up", 0, 60, 10)
        assert caught.value.unreachable
        assert time.monotonic() - started < 2.0


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="http"):
        PrometheusClient("file:///etc/passwd")
    assert Settings.from_env({}).prometheus_url == "http://prometheus:9090"
    assert Settings.from_env({"PROMETHEUS_URL": ""}).prometheus_url == "", "empty turns the graphs off"
    with pytest.raises(ConfigError, match="PROMETHEUS_URL"):
        Settings.from_env({"PROMETHEUS_URL": "prometheus:9090"})


class ScriptedClient(PrometheusClient):
    """A client whose answers are given by the test, counting what was asked."""

    def __init__(self, alerts: Any = (), series: Any = (), release: threading.Event | None = None) -> None:
        super().__init__("http://prometheus.invalid:9090", timeout=1.0)
        self.alerts, self.series, self.release = alerts, series, release
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def firing_alerts(self, timeout: float | None = None) -> list[Any]:
        with self.lock:
            self.asked.append("alerts")
        if isinstance(self.alerts, Exception):
            raise self.alerts
        return list(self.alerts)

    def query_range(
        self, query: str, start: float, end: float, step: float, timeout: float | None = None
    ) -> list[Series]:
        with self.lock:
            self.asked.append(query)
        if self.release is not None:
            self.release.wait(5)
        if isinstance(self.series, Exception):
            raise self.series
        return list(self.series)


def test_nothing_more_is_asked_once_prometheus_is_unreachable() -> None:
    client = ScriptedClient(alerts=PrometheusError("cannot reach it: refused", unreachable=True))
    dashboard = graphs.load_dashboard(client, graphs.time_range("15m"), now=1700000000)
    assert dashboard.unreachable == "cannot reach it: refused"
    assert client.asked == ["alerts"]
    assert dashboard.panels == ()


def test_every_panel_is_asked_for_its_range_with_its_rate_window() -> None:
    series = [Series({"hostname": "web-1"}, ((1700000000.0, 1.0),))]
    client = ScriptedClient(series=series)
    dashboard = graphs.load_dashboard(client, graphs.time_range("1h"), now=1700000005)
    assert dashboard.unreachable is None and dashboard.alerts == ()
    assert (dashboard.step, dashboard.end - dashboard.start) == (40, 3600)
    assert dashboard.end % 40 == 0, "the range ends on the step grid"
    assert sorted(client.asked[1:]) == sorted(panel.query_for(40) for panel in graphs.PANELS)
    assert all("[160s]" in q for q in client.asked[1:] if "rate(" in q)
    assert [d.panel for d in dashboard.panels] == list(graphs.PANELS)
    assert all(d.series == tuple(series) and d.error is None for d in dashboard.panels)


def test_a_failed_panel_query_fails_that_panel_only() -> None:
    client = ScriptedClient(series=PrometheusError("bad_data: unknown function"))
    dashboard = graphs.load_dashboard(client, graphs.time_range("15m"), now=1700000000, panels=graphs.PANELS[:2])
    assert [d.error for d in dashboard.panels] == ["bad_data: unknown function"] * 2


def test_panels_still_out_at_the_end_of_the_budget_are_given_up() -> None:
    release = threading.Event()
    client = ScriptedClient(series=[], release=release)
    started = time.monotonic()
    try:
        dashboard = graphs.load_dashboard(client, graphs.time_range("15m"), now=1700000000, budget=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert {d.error for d in dashboard.panels} == {"no answer within the time budget"}


@pytest.mark.parametrize(("seconds", "step"), [(15 * 60, 10), (60 * 60, 40)])
def test_each_range_has_between_60_and_120_points(seconds: int, step: int) -> None:
    assert graphs.step_for(seconds) == step
    assert 60 <= seconds // step + 1 <= 120


def test_rate_window_is_four_steps_and_at_least_a_minute() -> None:
    assert graphs.rate_window(10) == "60s"
    assert graphs.rate_window(40) == "160s"


def test_a_legend_names_a_series_by_its_labels() -> None:
    panel = graphs.PANELS[0]
    assert panel.name_of({"hostname": "web-1", "instance": "x"}) == "web-1"
    assert panel.name_of({}) == "?"


def test_an_unknown_range_is_the_default_one() -> None:
    assert graphs.time_range("1y").key == graphs.DEFAULT_RANGE == "15m"
    assert graphs.time_range(None).key == "15m"
    assert graphs.time_range("1h").seconds == 3600
