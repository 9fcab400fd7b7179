"""What the graphs on /ops show, and fetching all of it from Prometheus within a time budget.

``PANELS`` is the one place for the PromQL: adding a graph is adding a line there. A query may
write ``$__rate`` for its rate window, which follows the step (``rate_window``), so that the
hour's graph, a point every 40 s, still averages over every scrape between two points.

``load_dashboard`` asks for the firing alerts first: that one call finds out whether Prometheus is
there at all, and when it is not, no panel query is tried (each would wait for the same refusal or
timeout). The panel queries then run concurrently (greenlets under gevent, threads elsewhere), each
with the time that is left of the budget, so the page never waits much more than ``TOTAL_BUDGET``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from app.services.prometheus import Alert, PrometheusClient, PrometheusError, Series

#: Seconds for everything /ops asks Prometheus (alerts first, then the panels together).
TOTAL_BUDGET = 3.0
#: Points per series a range is divided into (60 to 120 read well at the graphs' width).
TARGET_POINTS = 90
#: The shortest rate window: six scrapes at the 10 s interval of monitoring/prometheus.yml, so a
#: missed scrape or a restarted replica still leaves rate() the two samples it needs.
MIN_RATE_WINDOW = 60
#: A query never gets less time than this, even at the end of the budget.
MIN_QUERY_TIMEOUT = 0.2


@dataclass(frozen=True)
class Unit:
    """How a panel's values read: multiplied by ``scale``, then followed by ``suffix``."""

    suffix: str
    scale: float = 1.0


REQUESTS_PER_SECOND = Unit("req/s")
MILLISECONDS = Unit("ms", 1000.0)  # from seconds
PERCENT = Unit("%", 100.0)  # from a ratio
TASKS = Unit("tasks")
TASKS_PER_SECOND = Unit("tasks/s")
SECONDS = Unit("s")
READS_PER_SECOND = Unit("reads/s")


@dataclass(frozen=True)
class Panel:
    """One graph: its title, its PromQL, the unit of its values, the name of each series (a
    ``str.format`` template over the series' labels, e.g. ``{hostname}``) and a line saying what
    it shows."""

    title: str
    query: str
    unit: Unit
    legend: str
    description: str

    def query_for(self, step: int) -> str:
        return self.query.replace("$__rate", rate_window(step))

    def name_of(self, labels: Mapping[str, str]) -> str:
        """The series' name in the legend; a label the series lacks reads ``?``."""
        return self.legend.format_map(MissingLabels(labels))


class MissingLabels(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


_WEB_REPLICA = 'on(instance) group_left(hostname) newsdesk_process_info{job="web"}'

PANELS: tuple[Panel, ...] = (
    Panel(
        "Request rate by replica",
        'sum by (hostname) (rate(newsdesk_http_request_duration_seconds_count{job="web"}[$__rate])'
        f" * {_WEB_REPLICA})",
        REQUESTS_PER_SECOND,
        "{hostname}",
        "Requests each web replica answered per second: the load balancing is even when the lines are close.",
    ),
    Panel(
        "p99 latency by replica",
        "histogram_quantile(0.99, sum by (hostname, le) "
        f'(rate(newsdesk_http_request_duration_seconds_bucket{{job="web"}}[$__rate]) * {_WEB_REPLICA}))',
        MILLISECONDS,
        "{hostname}",
        "The time within which 99 of 100 requests were answered, per replica.",
    ),
    Panel(
        "5xx rate",
        'sum(rate(newsdesk_http_request_duration_seconds_count{job="web",status=~"5.."}[$__rate]))',
        REQUESTS_PER_SECOND,
        "5xx",
        "Requests answered with a server error, all replicas together: should stay at zero.",
    ),
    Panel(
        "Cache hit ratio",
        'sum(rate(newsdesk_cache_requests_total{job="web",result=~"hit|local"}[$__rate]))'
        ' / sum(rate(newsdesk_cache_requests_total{job="web"}[$__rate]))',
        PERCENT,
        "hits",
        "Share of cache lookups answered from the cache (Redis or the replica's own memory).",
    ),
    Panel(
        "Queue length",
        'max by (queue) (newsdesk_celery_queue_length{job="worker"})',
        TASKS,
        "{queue}",
        "Tasks waiting in each Celery queue: a line that keeps rising means the workers fall behind.",
    ),
    Panel(
        "Task throughput",
        'sum by (state) (rate(newsdesk_celery_tasks_total{job="worker"}[$__rate]))',
        TASKS_PER_SECOND,
        "{state}",
        "Celery tasks per second by what happened to them (started, succeeded, failed, retried).",
    ),
    Panel(
        "Replica lag",
        "max by (standby) (newsdesk_standby_replay_lag_seconds)",
        SECONDS,
        "{standby}",
        "How long a commit on the primary takes to be replayed on each replica (the primary's measure);"
        " reads leave a replica that lags too far.",
    ),
    Panel(
        "Database reads by target",
        'sum by (target) (rate(newsdesk_db_reads_total{job="web"}[$__rate]))',
        READS_PER_SECOND,
        "{target}",
        "Where the web replicas' reads went: the replica, the primary, or the primary as a fallback.",
    ),
)


@dataclass(frozen=True)
class TimeRange:
    key: str
    label: str
    seconds: int


RANGES: Mapping[str, TimeRange] = {
    "15m": TimeRange("15m", "Last 15 minutes", 15 * 60),
    "1h": TimeRange("1h", "Last hour", 60 * 60),
}
DEFAULT_RANGE = "15m"


def time_range(key: str | None) -> TimeRange:
    """The range named ``key``; the default one for anything else (a link typed by hand)."""
    return RANGES.get(key or DEFAULT_RANGE) or RANGES[DEFAULT_RANGE]


def step_for(seconds: int, points: int = TARGET_POINTS) -> int:
    """Whole seconds between points, so that ``seconds`` holds about ``points`` of them."""
    return max(1, math.ceil(seconds / points))


def rate_window(step: int) -> str:
    """``max(1m, 4 * step)``: four steps, so every scrape between two points counts, never under a minute."""
    return f"{max(MIN_RATE_WINDOW, 4 * step)}s"


@dataclass(frozen=True)
class PanelData:
    """A panel's series, or why there are none (``error``; an empty tuple alone means no data)."""

    panel: Panel
    series: tuple[Series, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Dashboard:
    """Everything the graphs of /ops show for one range. ``unreachable`` (a message) means
    Prometheus did not answer at all: there are no alerts and no panels then."""

    url: str
    range: TimeRange
    start: float
    end: float
    step: int
    alerts: tuple[Alert, ...] = ()
    alerts_error: str | None = None
    panels: tuple[PanelData, ...] = ()
    unreachable: str | None = None


def load_dashboard(
    client: PrometheusClient,
    chosen: TimeRange,
    now: float,
    panels: Sequence[Panel] = PANELS,
    budget: float = TOTAL_BUDGET,
) -> Dashboard:
    """The alerts and the panels' series for the ``chosen`` range ending at ``now``. Never raises
    PrometheusError: what failed is in the answer."""
    deadline = time.monotonic() + budget
    step = step_for(chosen.seconds)
    end = math.floor(now / step) * step  # on the step grid: a reload shows the same points
    start = end - chosen.seconds
    base = Dashboard(url=client.base_url, range=chosen, start=start, end=end, step=step)
    try:
        alerts = tuple(client.firing_alerts(timeout=remaining(deadline, client.timeout)))
        alerts_error = None
    except PrometheusError as exc:
        if exc.unreachable:
            return replace(base, unreachable=str(exc))
        alerts, alerts_error = (), str(exc)
    data = query_panels(client, panels, start, end, step, deadline)
    return replace(base, alerts=alerts, alerts_error=alerts_error, panels=data)


def query_panels(
    client: PrometheusClient, panels: Sequence[Panel], start: float, end: float, step: int, deadline: float
) -> tuple[PanelData, ...]:
    """Each panel's series, queried concurrently. Once one query finds Prometheus gone, the
    queries not yet sent are not sent; a query still out at the deadline is given up."""
    gone = threading.Event()

    def fetch(panel: Panel) -> PanelData:
        if gone.is_set():
            return PanelData(panel, error="not asked: Prometheus stopped answering")
        try:
            series = client.query_range(
                panel.query_for(step), start, end, step, timeout=remaining(deadline, client.timeout)
            )
        except PrometheusError as exc:
            if exc.unreachable:
                gone.set()
            return PanelData(panel, error=str(exc))
        return PanelData(panel, series=tuple(series))

    if not panels:
        return ()
    pool = ThreadPoolExecutor(max_workers=len(panels), thread_name_prefix="prometheus")
    try:
        futures: list[Future[PanelData]] = [pool.submit(fetch, panel) for panel in panels]
        wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        # Stragglers end by their own timeout (at most the budget's remainder): nobody waits for them.
        pool.shutdown(wait=False, cancel_futures=True)
    return tuple(outcome(panel, future) for panel, future in zip(panels, futures, strict=True))


def outcome(panel: Panel, future: Future[PanelData]) -> PanelData:
    """What a panel's query came to; a surprise in one panel must not cost the page."""
    if not future.done() or future.cancelled():
        return PanelData(panel, error="no answer within the time budget")
    failure = future.exception()
    if failure is not None:
        return PanelData(panel, error=f"{type(failure).__name__}: {failure}")
    return future.result()


def remaining(deadline: float, longest: float) -> float:
    """A query's timeout: what is left of the budget, at most ``longest``, at least a little."""
    return max(MIN_QUERY_TIMEOUT, min(longest, deadline - time.monotonic()))
