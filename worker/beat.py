"""The beat scheduler, with a liveness file for the compose healthcheck and the time of its last
tick for Prometheus (served by worker.signals.serve_beat_metrics)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

BEAT_HEARTBEAT = Path("/tmp/beat-heartbeat")


class HeartbeatScheduler(PersistentScheduler):
    """PersistentScheduler that touches BEAT_HEARTBEAT and notes the time (``last_tick_at``, Unix
    seconds) on every tick (at most beat_max_loop_interval apart)."""

    last_tick_at: float | None = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        BEAT_HEARTBEAT.touch()
        self.last_tick_at = time.time()
        return super().tick(*args, **kwargs)
