"""A small client of Prometheus's HTTP API: range queries and firing alerts, for the graphs on /ops.

The standard library is enough for two GET endpoints (urllib + json, no dependency). Every call
has a short timeout, which urllib applies to the connection and to each read, because /ops must
answer when Prometheus is stopped or stuck. Everything that is not a usable answer raises one
exception, ``PrometheusError``; its ``unreachable`` flag says there was no answer at all (refused,
timed out, unknown host), so that a caller can skip the queries that would fail the same way.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Seconds to connect, and then for each read of the answer.
DEFAULT_TIMEOUT = 1.5
#: A larger answer is not a graph anyone can read: refused rather than parsed.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: Critical alerts come first, then warnings, then anything else.
SEVERITY_ORDER = ("critical", "page", "error", "warning", "info")
#: Prometheus writes nanoseconds; datetime reads up to microseconds.
_EXTRA_FRACTION = re.compile(r"(\.\d{6})\d+")


class PrometheusError(Exception):
    """Prometheus gave no usable answer. ``unreachable``: no answer at all (connection refused,
    timed out, name unknown), as opposed to an answer that was an error or made no sense."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Series:
    """One time series of a range query: its labels and its (unix seconds, value) points, in time
    order. Points whose value is not a finite number (NaN, +Inf: a ratio of zero rates, a quantile
    of an empty histogram) are left out, since a graph cannot place them."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Alert:
    """A firing alert as /ops lists it."""

    name: str
    severity: str
    summary: str
    since: datetime | None
    labels: Mapping[str, str] = field(default_factory=dict)


class PrometheusClient:
    """Queries one Prometheus server (``base_url``, e.g. ``http://prometheus:9090``)."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in {"http", "https"}:
            raise ValueError(f"a Prometheus URL is http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # No proxy from the environment: Prometheus is a neighbour on the stack's network.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def query_range(
        self, query: str, start: float, end: float, step: float, timeout: float | None = None
    ) -> list[Series]:
        """The series of ``query`` from ``start`` to ``end`` (unix seconds), a point every ``step`` s."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return parse_matrix(self.get("/api/v1/query_range", params, timeout))

    def firing_alerts(self, timeout: float | None = None) -> list[Alert]:
        """The alerts firing now (pending ones are left out), the most severe and oldest first."""
        return parse_alerts(self.get("/api/v1/alerts", {}, timeout))

    def get(self, path: str, params: Mapping[str, str], timeout: float | None = None) -> Any:
        """The ``data`` member of the answer to GET ``path``."""
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout if timeout is None else timeout) as response:
                body = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            # A bad query is a 400 (422 for one that cannot run) with the reason in the JSON body.
            detail = error_detail(exc.read(64 * 1024)) or exc.reason
            raise PrometheusError(f"{self.base_url} answered HTTP {exc.code}: {detail}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise PrometheusError(f"cannot reach {self.base_url}: {reason}", unreachable=True) from exc
        if len(body) > MAX_ANSWER_BYTES:
            raise PrometheusError(f"{self.base_url} answered more than {MAX_ANSWER_BYTES} bytes")
        return answer_data(body)


def answer_data(body: bytes) -> Any:
    """The ``data`` of an API answer (``{"status": "success", "data": ...}``)."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise PrometheusError("the answer is not JSON: is the URL Prometheus?") from None
    if not isinstance(answer, dict):
        raise PrometheusError("the answer is not a Prometheus API answer")
    if answer.get("status") != "success":
        raise PrometheusError(f"query failed: {error_detail(body) or 'no reason given'}")
    return answer.get("data")


def error_detail(body: bytes) -> str:
    """``errorType: error`` of an error answer, or "" when the body is not one."""
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(answer, dict) or "error" not in answer:
        return ""
    return f"{answer.get('errorType', 'error')}: {answer['error']}"


def parse_matrix(data: Any) -> list[Series]:
    """Series of a range query's ``data`` (``resultType`` matrix), in label order so that each keeps
    its colour from one reload to the next; a series with no finite point is left out."""
    try:
        if data["resultType"] != "matrix":
            raise PrometheusError(f"expected a matrix, got {data['resultType']!r}")
        found = []
        for result in data["result"]:
            labels = {str(name): str(value) for name, value in result.get("metric", {}).items()}
            points = tuple(point for raw in result.get("values", []) if (point := finite_point(raw)) is not None)
            if points:
                found.append(Series(labels, points))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise PrometheusError(f"the answer is not a range-query result ({type(exc).__name__}: {exc})") from None
    return sorted(found, key=lambda series: sorted(series.labels.items()))


def finite_point(raw: Any) -> tuple[float, float] | None:
    """``[1700000000.5, "0.25"]`` -> ``(1700000000.5, 0.25)``; None for NaN and infinities."""
    timestamp, text = raw
    value = float(text)  # Prometheus writes "NaN", "+Inf", "-Inf": float() reads them all
    return (float(timestamp), value) if math.isfinite(value) else None


def parse_alerts(data: Any) -> list[Alert]:
    """The firing alerts of /api/v1/alerts's ``data``, most severe first, then oldest first."""
    try:
        alerts = [
            Alert(
                name=raw.get("labels", {}).get("alertname", "(unnamed)"),
                severity=raw.get("labels", {}).get("severity", ""),
                summary=raw.get("annotations", {}).get("summary", ""),
                since=parse_time(raw.get("activeAt")),
                labels=dict(raw.get("labels", {})),
            )
            for raw in data["alerts"]
            if raw.get("state") == "firing"
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise PrometheusError(f"the answer is not a list of alerts ({type(exc).__name__}: {exc})") from None
    return sorted(alerts, key=alert_order)


def alert_order(alert: Alert) -> tuple[int, float, str]:
    rank = SEVERITY_ORDER.index(alert.severity) if alert.severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
    return rank, alert.since.timestamp() if alert.since else math.inf, alert.name


def parse_time(text: Any) -> datetime | None:
    """RFC 3339 with up to nanoseconds (``2025-01-01T12:00:00.123456789Z``); None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(_EXTRA_FRACTION.sub(r"\1", text))
    except ValueError:
        return None
    return None if moment.year <= 1 else moment  # Go's zero time: never active
