"""The worker's and beat's metrics (worker.metrics): task signals move the counters, the queue
collector survives a broker that does not answer, and the endpoint serves what Prometheus reads."""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery.signals import task_failure, task_postrun, task_prerun, task_retry, task_success
from prometheus_client import REGISTRY, generate_latest

from app.config import Settings
from tests.fake_task import FakeTask
from worker import metrics
from worker.beat import HeartbeatScheduler


class FakePipeline:
    def __init__(self, replies: dict[str, int], error: Exception | None) -> None:
        self.replies = replies
        self.error = error
        self.commands: list[tuple[str, str]] = []

    def llen(self, key: str) -> None:
        self.commands.append(("llen", key))

    def hlen(self, key: str) -> None:
        self.commands.append(("hlen", key))

    def execute(self) -> list[int]:
        if self.error is not None:
            raise self.error
        return [self.replies.get(key, 0) for _, key in self.commands]


class FakeBroker:
    """What QueueLengthCollector asks of the broker's client: one pipeline per scrape."""

    def __init__(self, replies: dict[str, int] | None = None, error: Exception | None = None) -> None:
        self.replies = replies or {}
        self.error = error
        self.pipelines: list[FakePipeline] = []

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False, "reading lengths needs no MULTI"
        self.pipelines.append(FakePipeline(self.replies, self.error))
        return self.pipelines[-1]


def samples(collector: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def task_sample(name: str, state: str) -> float:
    return REGISTRY.get_sample_value("newsdesk_celery_tasks_total", {"task": name, "state": state}) or 0.0


def duration_count(name: str) -> float:
    return REGISTRY.get_sample_value("newsdesk_celery_task_duration_seconds_count", {"task": name}) or 0.0


@pytest.fixture
def task_name() -> str:
    """A task name no other test uses: the counters live for the whole test process."""
    return f"tests.metrics.{uuid.uuid4().hex[:8]}"


def test_queue_lengths_sum_every_priority_list_and_report_unacked() -> None:
    broker = FakeBroker({"default": 3, "default\x06\x163": 2, "mail": 1, "unacked": 4})
    collector = metrics.QueueLengthCollector(broker, ["default", "mail"])  # type: ignore[arg-type]

    assert samples(collector) == {
        ("newsdesk_celery_queue_length", (("queue", "default"),)): 5,
        ("newsdesk_celery_queue_length", (("queue", "mail"),)): 1,
        ("newsdesk_celery_queue_length", (("queue", "unacked"),)): 4,
    }
    assert len(broker.pipelines) == 1, "one round trip per scrape"


def test_a_broker_error_leaves_the_samples_out_and_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    broker = FakeBroker(error=redis.ConnectionError("Error 111 connecting to redis:6379"))
    collector = metrics.QueueLengthCollector(broker, ["default"])  # type: ignore[arg-type]

    with caplog.at_level(logging.DEBUG, logger="worker.metrics"):
        families = list(collector.collect())

    assert [family.name for family in families] == ["newsdesk_celery_queue_length"]
    assert families[0].samples == []
    assert [(r.levelno, "Error 111" in r.getMessage()) for r in caplog.records] == [(logging.DEBUG, True)]


def test_a_broken_broker_does_not_break_the_scrape() -> None:
    broker = FakeBroker(error=redis.TimeoutError("Timeout reading from redis:6379"))
    registry = metrics.worker_registry(broker, ["default"], "worker-1")  # type: ignore[arg-type]

    text = generate_latest(registry).decode()

    assert 'newsdesk_process_info{hostname="worker-1",role="worker"} 1.0' in text
    assert "newsdesk_celery_queue_length{" not in text


def test_queue_names_are_the_default_queue_and_the_declared_ones() -> None:
    conf = SimpleNamespace(task_default_queue="default", task_queues=None)
    assert metrics.queue_names(conf) == ("default",)
    conf.task_queues = [SimpleNamespace(name="mail"), SimpleNamespace(name="default")]
    assert metrics.queue_names(conf) == ("default", "mail")


def test_a_task_that_succeeds_counts_started_and_succeeded_and_its_duration(task_name: str) -> None:
    task = FakeTask(task_name, request_id="rid-1")

    task_prerun.send(sender=task, task_id="t1", task=task, args=(), kwargs={})
    task_success.send(sender=task, result=None)
    task_postrun.send(sender=task, task_id="t1", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")

    assert task_sample(task_name, "started") == 1
    assert task_sample(task_name, "succeeded") == 1
    assert task_sample(task_name, "failed") == 0
    assert duration_count(task_name) == 1
    upper = REGISTRY.get_sample_value("newsdesk_celery_task_duration_seconds_bucket", {"task": task_name, "le": "0.01"})
    assert upper == 1, "an instant task falls in the first bucket"


def test_failures_and_retries_are_counted_by_their_own_state(task_name: str) -> None:
    task = FakeTask(task_name)

    for outcome in (task_failure, task_retry, task_failure):
        task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
        outcome.send(sender=task)
        task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None, state="X")

    assert task_sample(task_name, "started") == 3
    assert task_sample(task_name, "failed") == 2
    assert task_sample(task_name, "retried") == 1
    assert task_sample(task_name, "succeeded") == 0
    assert duration_count(task_name) == 3, "every execution is timed, whatever its outcome"


def test_an_execution_is_timed_once(task_name: str) -> None:
    task = FakeTask(task_name)
    metrics.task_ended(task)  # never started (e.g. its prerun failed): nothing to observe
    metrics.task_started(task)
    metrics.task_ended(task)
    metrics.task_ended(task)
    assert duration_count(task_name) == 1


def test_beat_endpoint_has_the_last_tick_once_there_is_one() -> None:
    ticks: list[float] = []
    registry = metrics.beat_registry(lambda: ticks[-1] if ticks else None, "beat-1")

    before = generate_latest(registry).decode()
    ticks.append(1_700_000_000.5)
    after = generate_latest(registry).decode()

    assert "\nnewsdesk_beat_last_tick_timestamp_seconds " not in before, "no sample before the first tick"
    assert "\nnewsdesk_beat_last_tick_timestamp_seconds 1.7000000005e+09\n" in after
    assert 'newsdesk_process_info{hostname="beat-1",role="beat"} 1.0' in after


def test_the_beat_scheduler_notes_each_tick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("celery.beat.PersistentScheduler.tick", lambda self, *a, **k: 5.0)
    monkeypatch.setattr("worker.beat.BEAT_HEARTBEAT", tmp_path / "beat-heartbeat")
    scheduler = HeartbeatScheduler.__new__(HeartbeatScheduler)  # no app, no schedule file needed
    assert scheduler.last_tick_at is None

    assert scheduler.tick() == 5.0
    first = scheduler.last_tick_at
    scheduler.tick()

    assert first is not None and scheduler.last_tick_at is not None and scheduler.last_tick_at >= first
    assert (tmp_path / "beat-heartbeat").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served() -> Iterator[int]:
    """The port of a running metrics endpoint serving the beat registry."""
    port = free_port()
    server = metrics.serve(port, metrics.beat_registry(lambda: 12.0, "beat-1"))
    assert server is not None
    try:
        yield port
    finally:
        metrics.stop(server)


def test_the_endpoint_serves_the_registry_over_http(served: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{served}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "\nnewsdesk_beat_last_tick_timestamp_seconds 12.0\n" in body


def test_a_taken_port_or_port_zero_starts_nothing_and_raises_nothing(
    served: int, caplog: pytest.LogCaptureFixture
) -> None:
    registry = metrics.beat_registry(lambda: None, "beat-2")
    assert metrics.serve(0, registry) is None
    with caplog.at_level(logging.WARNING, logger="worker.metrics"):
        assert metrics.serve(served, registry) is None
    assert "not started" in caplog.text


def test_the_metrics_port_defaults_to_9808_and_zero_turns_it_off() -> None:
    assert Settings.from_env({}).worker_metrics_port == 9808
    assert Settings.from_env({"WORKER_METRICS_PORT": "0"}).worker_metrics_port == 0


def test_a_worker_start_removes_the_files_of_other_processes_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pid = os.getpid()
    own = f"counter_{pid}.db"
    # Other processes' ids: never this one's (in a container the tests may well run as pid 25).
    for name in (f"counter_{pid + 1}.db", f"histogram_{pid + 2}.db", f"gauge_livesum_{pid + 1}.db", own):
        (tmp_path / name).write_bytes(b"")

    metrics.reset_multiprocess_dir()

    assert sorted(path.name for path in tmp_path.iterdir()) == [own], "open in this process: kept"


def test_a_pool_child_that_exits_leaves_its_counts_and_drops_its_live_gauges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("counter_25.db", "gauge_livesum_25.db", "gauge_liveall_25.db", "gauge_livesum_26.db"):
        (tmp_path / name).write_bytes(b"")

    metrics.forget_process(25)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["counter_25.db", "gauge_livesum_26.db"]
