"""The web app sends tasks by the names in app.task_names, and the worker registers every one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from celery import Celery

from app import task_names
from app.config import RETRY_BACKOFF_MAX, TASK_TIME_LIMIT

ROOT = Path(__file__).resolve().parents[2]
#: The calls that send a task: their first argument is the task's name.
SENDERS = {"add_task", "send_task"}
#: Passes on the names stored in its table (written by add_task, so checked there).
OUTBOX = "app/services/outbox.py"


@pytest.fixture(scope="module")
def worker_celery() -> Celery:
    """The worker's Celery app, with its task modules imported as `celery worker` does."""
    import worker

    worker.celery.loader.import_default_modules()
    return worker.celery


def test_every_task_name_is_registered_by_the_worker(worker_celery: Celery) -> None:
    registered = {name for name in worker_celery.tasks if not name.startswith("celery.")}
    assert registered >= task_names.ALL, f"sent but not registered: {sorted(task_names.ALL - registered)}"


def test_every_name_constant_is_listed_in_all() -> None:
    constants = {value for name, value in vars(task_names).items() if name.isupper() and isinstance(value, str)}
    assert constants == task_names.ALL


def test_beat_schedules_name_registered_tasks(worker_celery: Celery) -> None:
    schedule = worker_celery.conf.beat_schedule
    assert schedule, "beat has something to schedule"
    assert {entry["task"] for entry in schedule.values()} <= task_names.ALL


def test_beat_runs_the_outbox_relay_every_few_seconds_and_the_purge(worker_celery: Celery) -> None:
    by_task = {entry["task"]: entry for entry in worker_celery.conf.beat_schedule.values()}
    assert by_task[task_names.RELAY_OUTBOX]["schedule"] <= 5, "what the broker missed is sent within seconds"
    assert task_names.PURGE_OUTBOX in by_task


def sent_task_names(path: Path) -> list[ast.expr]:
    """The first argument of every call in ``path`` that sends a task."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in SENDERS:
                found.append(node.args[0])
    return found


def test_the_app_sends_tasks_only_by_their_names_in_task_names() -> None:
    """``enqueue("articles.process", ...)`` would escape the check above: names come from app.task_names."""
    sends = {
        str(path.relative_to(ROOT)): sent_task_names(path)
        for path in sorted((ROOT / "app").rglob("*.py"))
        if str(path.relative_to(ROOT)) != OUTBOX
    }
    assert sum(len(found) for found in sends.values()) >= 3, "the scan finds the app's sends"
    assert sent_task_names(ROOT / OUTBOX), "the scan sees the outbox's send"
    literal = {
        path: [
            ast.unparse(arg)
            for arg in args
            if not (isinstance(arg, ast.Attribute) and ast.unparse(arg).startswith("task_names."))
        ]
        for path, args in sends.items()
    }
    assert {path: args for path, args in literal.items() if args} == {}


def test_no_task_holds_its_message_past_the_visibility_timeout(worker_celery: Celery) -> None:
    """A retry's countdown is spent holding the message (unacknowledged) in the worker: every
    task's backoff is capped at RETRY_BACKOFF_MAX, and none runs longer than the global limit,
    which app.config's visibility timeout is derived from."""
    for name in task_names.ALL:
        task = worker_celery.tasks[name]
        if getattr(task, "autoretry_for", ()):
            assert task.retry_backoff, f"{name}: an autoretry without backoff waits default_retry_delay"
            assert task.retry_backoff_max <= RETRY_BACKOFF_MAX, name
        assert task.default_retry_delay <= RETRY_BACKOFF_MAX, name
        assert task.time_limit is None or task.time_limit <= TASK_TIME_LIMIT, name


def test_the_slow_smoke_task_is_redelivered_when_its_worker_dies(worker_celery: Celery) -> None:
    task = worker_celery.tasks[task_names.SMOKE_SLEEP]
    assert task.acks_late and task.reject_on_worker_lost
