"""Prometheus metrics of the worker and beat containers, served on ``WORKER_METRICS_PORT`` (9808).

A worker runs its tasks in prefork children, and task signals fire there: each child writes its
counts to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, as gunicorn's
workers do), and one small HTTP server in the worker's main process adds them up at every scrape,
so a container is one target whose children come and go unseen. What is not a count is computed
at scrape time by collectors: the broker's queue lengths, and the container's name and role.

Beat is one process: its endpoint has the time of the scheduler's last tick and the same name
and role. The wiring (signals, the bootstep) is in worker.signals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from wsgiref.simple_server import WSGIServer

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: Task durations from 10 ms (an outbox relay pass takes about that) to the soft time limit (60 s, app.config).
TASK_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

TASKS = Counter(
    "newsdesk_celery_tasks",
    "Task executions by task name and state: started, then succeeded, failed or retried.",
    ["task", "state"],
)
TASK_DURATION = Histogram(
    "newsdesk_celery_task_duration_seconds",
    "Time a task's execution took, whatever its outcome.",
    ["task"],
    buckets=TASK_DURATION_BUCKETS,
)

#: The hash in which kombu's Redis transport keeps delivered messages until they are acknowledged
#: (with acks_late: until their task has run).
UNACKED_KEY = Channel.unacked_key
#: Attribute of a task's request (one per execution) holding when it started (perf_counter).
_STARTED = "newsdesk_started_at"


def task_started(task: Any) -> None:
    """Count the start of an execution and note its start time on the task's request."""
    setattr(task.request, _STARTED, time.perf_counter())
    TASKS.labels(task.name, "started").inc()


def task_ended(task: Any) -> None:
    """Observe how long the execution took that ``task_started`` saw begin (any outcome)."""
    started = getattr(task.request, _STARTED, None)
    if started is not None:
        setattr(task.request, _STARTED, None)
        TASK_DURATION.labels(task.name).observe(time.perf_counter() - started)


def count_outcome(task: Any, state: str) -> None:
    TASKS.labels(task.name, state).inc()


def queue_names(conf: Any) -> tuple[str, ...]:
    """The queues the app sends to: the default queue and any declared in ``task_queues``."""
    names = {conf.task_default_queue, *(queue.name for queue in conf.task_queues or ())}
    return tuple(sorted(names))


def queue_keys(queue: str) -> tuple[str, ...]:
    """The Redis lists holding ``queue``'s messages: kombu keeps one per priority step
    (``default``, then ``default\\x06\\x163`` ...); tasks sent without a priority use the first."""
    return (queue, *(f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS if step))


class QueueLengthCollector(Collector):
    """``newsdesk_celery_queue_length{queue}``, read from the broker at scrape time.

    All lengths come in one round trip. When the broker does not answer the samples are left
    out (and the reason logged at debug): an unreachable broker shows as missing data, and the
    scrape's other metrics still arrive.
    """

    def __init__(self, broker: redis.Redis, queues: Sequence[str]) -> None:
        self.broker = broker
        self.queues = tuple(queues)

    def lengths(self) -> dict[str, int]:
        """Waiting messages per queue, plus those delivered and not yet acknowledged (``unacked``)."""
        pipe = self.broker.pipeline(transaction=False)
        for queue in self.queues:
            for key in queue_keys(queue):
                pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        replies = iter(pipe.execute())
        lengths = {queue: sum(next(replies) for _ in queue_keys(queue)) for queue in self.queues}
        lengths["unacked"] = next(replies)
        return lengths

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "newsdesk_celery_queue_length",
            'Messages waiting in each Celery queue of the broker; queue="unacked": delivered to a '
            "worker and not yet acknowledged (running or reserved).",
            labels=["queue"],
        )
        try:
            lengths = self.lengths()
        except redis.RedisError as exc:
            log.debug("queue lengths left out of the scrape: %s", exc)
        else:
            for queue, length in lengths.items():
                family.add_metric([queue], length)
        yield family


class ProcessInfoCollector(Collector):
    """``newsdesk_process_info{hostname, role} 1``: Prometheus finds targets by address; graphs
    and alerts name them by container (the same series the web replicas serve, app.metrics)."""

    def __init__(self, hostname: str, role: str) -> None:
        self.hostname = hostname
        self.role = role

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "newsdesk_process_info",
            "The container (hostname) and role (web, worker, beat) of this metrics endpoint.",
            labels=["hostname", "role"],
        )
        family.add_metric([self.hostname, self.role], 1)
        yield family


class LastTickCollector(Collector):
    """``newsdesk_beat_last_tick_timestamp_seconds``: when beat's scheduler last ticked (Unix time).

    Beat ticks at least every ``beat_max_loop_interval`` (5 s): an alert compares this with the
    time of the scrape. No sample before the first tick.
    """

    def __init__(self, last_tick: Callable[[], float | None]) -> None:
        self.last_tick = last_tick

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "newsdesk_beat_last_tick_timestamp_seconds",
            "Unix time of the beat scheduler's last tick.",
        )
        at = self.last_tick()
        if at is not None:
            family.add_metric([], at)
        yield family


def registry_of(collectors: Iterable[Collector]) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return registry


def worker_registry(broker: redis.Redis, queues: Sequence[str], hostname: str) -> CollectorRegistry:
    """What a worker's endpoint serves: every process's counts (when in multiprocess mode), the
    queue lengths and the info series."""
    registry = registry_of([QueueLengthCollector(broker, queues), ProcessInfoCollector(hostname, "worker")])
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    return registry


def beat_registry(last_tick: Callable[[], float | None], hostname: str) -> CollectorRegistry:
    return registry_of([LastTickCollector(last_tick), ProcessInfoCollector(hostname, "beat")])


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def reset_multiprocess_dir() -> None:
    """Start a worker without the files of processes that are gone: a restart keeps /tmp, and
    the pool children of the last run (often with the same pids) would add their counts to this
    run's. Called in the main process before it forks the pool.

    This process's own files stay: building the app has opened some already (metrics created
    with their labels), and a file removed under an open mmap would swallow what the main process
    counts next (a task it fails itself, at a hard time limit). Its few counts may carry over a
    restart; a counter that does not reset is still a counter.
    """
    path = multiprocess_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for entry in os.scandir(path):
        if not entry.name.endswith(own):
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)


def forget_process(pid: int) -> None:
    """A pool child exited: drop its live-gauge files (its counts stay, as counters should)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def serve(port: int, registry: CollectorRegistry) -> WSGIServer | None:
    """Serve ``registry`` on ``port`` from a daemon thread; None when ``port`` is 0 or taken.

    A metrics endpoint that cannot listen is logged, never fatal: the worker's tasks matter more.
    """
    if not port:
        return None
    try:
        server, _ = start_http_server(port, registry=registry)
    except OSError as exc:
        log.warning("metrics endpoint not started on port %d: %s", port, exc)
        return None
    log.info("metrics on port %d", port)
    return server


def stop(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()
