"""The read-routing decision, given the replica's position, the writer's LSN and lag bounds."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from app.breaker import Breaker
from app.database.routing import (
    LOOP_LATE,
    PATIENCE,
    PRIMARY,
    REPLICA,
    REPLICA_BEHIND_READ_ONLY,
    LagLimits,
    ReplicaMonitor,
    decide_read_target,
    finished_within,
    read_only_error,
)
from app.database.wal import ReplicaPosition, parse_lsn
from tests.support import FakeClock

LIMITS = LagLimits(max_bytes=1_000_000, max_seconds=5.0)


def position(
    replay: int = 1000, receive: int | None = None, lag: float = 0.0, streaming: bool = True, in_recovery: bool = True
) -> ReplicaPosition:
    return ReplicaPosition(
        in_recovery=in_recovery,
        replay_lsn=replay,
        receive_lsn=receive if receive is not None else replay,
        lag_seconds=lag,
        streaming=streaming,
    )


def test_lsn_round_trip() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_lsn("0/3000148") == 0x3000148
    with pytest.raises(ValueError):
        parse_lsn("nonsense")


def test_reader_without_recent_write_uses_replica() -> None:
    assert decide_read_target(position(), None, LIMITS).target == REPLICA


def test_writer_reads_replica_once_it_replayed_the_write() -> None:
    decision = decide_read_target(position(replay=5000), 5000, LIMITS)
    assert (decision.target, decision.reason) == (REPLICA, "replica_caught_up")


def test_writer_reads_primary_while_replica_is_behind_the_write() -> None:
    decision = decide_read_target(position(replay=4999), 5000, LIMITS)
    assert (decision.target, decision.reason) == (PRIMARY, "replica_behind_writer")


def test_unreachable_replica_means_primary() -> None:
    assert decide_read_target(None, None, LIMITS).target == PRIMARY


@pytest.mark.parametrize(
    "pos",
    [position(replay=0, receive=2_000_000), position(lag=6.0)],
    ids=["bytes", "seconds"],
)
def test_lagging_replica_is_skipped_even_for_anonymous_reads(pos: ReplicaPosition) -> None:
    decision = decide_read_target(pos, None, LIMITS)
    assert (decision.target, decision.reason) == (PRIMARY, "replica_lagging")


def test_replica_that_is_not_streaming_or_promoted_is_skipped() -> None:
    assert decide_read_target(position(streaming=False), None, LIMITS).target == PRIMARY
    assert decide_read_target(position(in_recovery=False), None, LIMITS).target == PRIMARY


@pytest.mark.parametrize(
    "pos",
    [position(), position(streaming=False), position(lag=600.0), position(replay=0, receive=2_000_000)],
    ids=["healthy", "not-streaming", "lagging-seconds", "lagging-bytes"],
)
def test_with_the_primary_down_every_read_goes_to_a_reachable_replica(pos: ReplicaPosition) -> None:
    decision = decide_read_target(pos, None, LIMITS, primary_up=False)
    assert (decision.target, decision.reason) == (REPLICA, "primary_down")


def test_with_the_primary_down_a_writer_reads_a_replica_behind_its_write_and_is_told() -> None:
    assert decide_read_target(position(replay=5000), 5000, LIMITS, primary_up=False).reason == "primary_down"
    decision = decide_read_target(position(replay=4999), 5000, LIMITS, primary_up=False)
    assert (decision.target, decision.reason) == (REPLICA, REPLICA_BEHIND_READ_ONLY)


def test_with_both_databases_down_the_read_goes_to_the_primary_which_refuses_it() -> None:
    assert decide_read_target(None, None, LIMITS, primary_up=False).target == PRIMARY


def test_the_primary_breaker_says_when_to_retry() -> None:
    clock = FakeClock()
    breaker = Breaker("primary database", 3.0, clock=clock)
    assert breaker.closed and breaker.seconds_left == 0
    breaker.trip(ConnectionError("refused"))
    assert not breaker.closed
    assert read_only_error(breaker).retry_after == 3
    clock.now += 2.5
    assert read_only_error(breaker).retry_after == 1, "rounded up, never 0"
    clock.now += 0.5
    assert breaker.closed, "the next write tries the primary again"
    breaker.trip(ConnectionError("refused"))
    breaker.reset()  # a connection to the primary succeeded
    assert breaker.closed


class FakeEngine:
    """Stands in for the replica's engine: its connections are only handed to ``read_position``."""

    @contextlib.contextmanager
    def connect(self) -> Iterator[object]:
        yield object()


def test_monitor_backs_off_after_failure_and_caches_positions() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def fake_position(_conn: object) -> ReplicaPosition:
        calls.append(1)
        return position(replay=10)

    monitor = ReplicaMonitor(
        FakeEngine, LIMITS, cache_seconds=0.02, backoff_seconds=5.0, clock=clock, read_position=fake_position
    )
    assert monitor.position() == position(replay=10)
    assert monitor.position() == position(replay=10)
    assert len(calls) == 1, "cached within cache_seconds"
    clock.now += 0.05
    monitor.position()
    assert len(calls) == 2, "refreshed after cache_seconds"

    monitor.mark_unavailable("test")
    assert monitor.position() is None
    clock.now += 4.9
    assert monitor.position() is None, "still backing off"
    clock.now += 0.2
    assert monitor.position() == position(replay=10)


def test_monitor_keeps_a_lagging_replica_for_read_only_mode() -> None:
    clock = FakeClock()
    lagging = position(lag=60.0)
    monitor = ReplicaMonitor(
        FakeEngine, LIMITS, cache_seconds=0.02, backoff_seconds=5.0, clock=clock, read_position=lambda _c: lagging
    )
    assert monitor.position(lagging_ok=True) == lagging
    assert monitor.position() is None, "backing off: the primary serves while it is up"
    assert monitor.position(lagging_ok=True) == lagging, "the primary is down: the replica is all there is"
    monitor.mark_unavailable("connection refused")
    assert monitor.position(lagging_ok=True) is None, "an unreachable replica serves nobody"


def _hog(seconds: float) -> None:
    """A greenlet that keeps the CPU without yielding, as a saturated replica's requests do."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_an_answer_that_came_in_time_counts_even_when_the_loop_was_starved() -> None:
    import gevent
    from gevent import socket as gsocket

    server = gsocket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        for _ in range(3):
            answered: list[str] = []

            def check(answered: list[str]) -> None:
                finished_within(0.1, lambda: gsocket.create_connection(("127.0.0.1", port)).close())
                answered.append("ok")

            checker = gevent.spawn(check, answered)
            gevent.sleep(0)  # it starts connecting; the kernel answers at once
            gevent.spawn(_hog, 0.3)  # then the loop does not turn for 0.3 s
            checker.join()
            assert answered == ["ok"], f"a connect answered at once was taken for a timeout: {checker.exception!r}"
    finally:
        server.close()


def test_no_answer_within_the_bound_is_a_timeout_and_a_failure_is_its_own_error() -> None:
    import gevent

    started = time.monotonic()
    with pytest.raises(gevent.Timeout):
        finished_within(0.05, lambda: gevent.sleep(5))
    assert time.monotonic() - started < 0.05 + LOOP_LATE, "a loop that keeps time refuses within the bound"
    # A loop that cannot keep time waits longer for an answer, but not for ever.
    started = time.monotonic()
    gevent.spawn(_hog, 0.3)
    with pytest.raises(gevent.Timeout):
        finished_within(0.05, lambda: gevent.sleep(5))
    assert time.monotonic() - started < 0.3 + PATIENCE * 0.05 + LOOP_LATE

    def refused() -> None:
        raise ConnectionRefusedError("nothing listens")

    with pytest.raises(ConnectionRefusedError):
        finished_within(0.5, refused)
