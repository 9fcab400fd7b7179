"""Celery tasks, one module per domain. Each task is named from app.task_names (the names
the web app sends), and a module's periodic schedules sit beside its tasks in ``BEAT_SCHEDULE``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from worker.tasks import accounts, articles, outbox, smoke

#: Every module the worker loads tasks from.
TASK_MODULES: tuple[ModuleType, ...] = (smoke, articles, accounts, outbox)


def beat_schedule() -> dict[str, dict[str, Any]]:
    """beat's schedule: every module's ``BEAT_SCHEDULE``, merged (a name used twice is an error)."""
    schedule: dict[str, dict[str, Any]] = {}
    for module in TASK_MODULES:
        for name, entry in getattr(module, "BEAT_SCHEDULE", {}).items():
            if name in schedule:
                raise ValueError(f"beat schedule entry {name!r} is declared twice")
            schedule[name] = entry
    return schedule
