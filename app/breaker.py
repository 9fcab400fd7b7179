"""A circuit breaker: after a dependency fails, stop calling it for a few seconds instead
of paying a timeout on every request, then try again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Breaker:
    """Open (skip the dependency) for ``seconds`` after each failure; closed otherwise."""

    def __init__(self, name: str, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.seconds = seconds
        self._clock = clock
        self._open_until = float("-inf")

    @property
    def closed(self) -> bool:
        """Calls may go through."""
        return self._clock() >= self._open_until

    @property
    def seconds_left(self) -> float:
        """How long the breaker stays open (0 when closed)."""
        return max(0.0, self._open_until - self._clock())

    def trip(self, exc: BaseException) -> None:
        """A call failed: skip the dependency for the next ``seconds``."""
        if self.closed:
            log.warning("%s unavailable, skipped for %.0fs: %s", self.name, self.seconds, exc)
        self._open_until = self._clock() + self.seconds

    def hold(self, seconds: float) -> None:
        """Stay open for at least ``seconds`` from now, without logging (a probe is under way)."""
        self._open_until = max(self._open_until, self._clock() + seconds)

    def reset(self) -> None:
        self._open_until = float("-inf")
