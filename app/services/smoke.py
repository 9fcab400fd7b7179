"""Completions of the slow smoke task (``smoke.sleep``), so that an operator or a test can watch
a task survive the death of the worker running it: ``flask tasks smoke --seconds N --wait S``.

The task records which worker completed it, and when, under its task id in the `redis`
service. The first record stays: a task redelivered after it had completed (its worker died
before acknowledging it) runs again but does not overwrite it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import cast

import redis

KEY_PREFIX = "newsdesk:smoke:done:"
#: Records expire after a day; nobody waits that long.
TTL_SECONDS = 24 * 3600
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Completion:
    worker: str
    #: Unix time (the containers share the host's clock).
    completed_at: float


def record_completion(client: redis.Redis, task_id: str, worker: str, now: float | None = None) -> Completion:
    """Record that ``task_id`` completed on ``worker``, unless it already had; the record that holds."""
    mine = Completion(worker, time.time() if now is None else now)
    if client.set(KEY_PREFIX + task_id, json.dumps(asdict(mine)), nx=True, ex=TTL_SECONDS):
        return mine
    return completion(client, task_id) or mine


def completion(client: redis.Redis, task_id: str) -> Completion | None:
    raw = cast("bytes | None", client.get(KEY_PREFIX + task_id))  # a sync client
    return Completion(**json.loads(raw)) if raw is not None else None


def wait_for_completion(
    client: redis.Redis, task_id: str, timeout: float, clock: Callable[[], float] = time.monotonic
) -> Completion | None:
    """The task's completion, polled until ``timeout`` seconds have passed (None then). Redis
    being unreachable for a while (a restart, under test) counts as "not yet"."""
    deadline = clock() + timeout
    while True:
        try:
            done = completion(client, task_id)
        except redis.RedisError:
            done = None
        if done is not None or clock() >= deadline:
            return done
        time.sleep(POLL_SECONDS)
