"""The beat scheduler, with a liveness file for the compose healthcheck."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

BEAT_HEARTBEAT = Path("/tmp/beat-heartbeat")


class HeartbeatScheduler(PersistentScheduler):
    """PersistentScheduler that touches BEAT_HEARTBEAT on every tick (at most beat_max_loop_interval apart)."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        BEAT_HEARTBEAT.touch()
        return super().tick(*args, **kwargs)
