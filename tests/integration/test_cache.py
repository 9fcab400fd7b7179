"""The shared read cache against the real `cache` Redis: hits and misses, versioned
invalidation with the WAL position the refill must reach, the stampede lock and grace
period, and the breaker when the cache is unreachable."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask

from app.breaker import Breaker
from app.services.cache import JITTER, STALE_TTL, ReadCache, _key
from tests.support import FakeClock


class Recorder:
    """A compute function that counts its calls, and the WAL positions refills were asked for.
    ``saw_all``: whether its reads see the position asked for (False: the primary is down and
    the replica is short of it)."""

    def __init__(self, value: object = "v", delay: float = 0.0, saw_all: bool = True) -> None:
        self.value, self.delay, self.saw_all = value, delay, saw_all
        self.calls = 0
        self.refill_positions: list[int] = []
        self._lock = threading.Lock()

    def __call__(self) -> object:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.value

    @contextlib.contextmanager
    def refill_at(self, lsn: int) -> Iterator[Callable[[], bool]]:
        self.refill_positions.append(lsn)
        yield lambda: self.saw_all


@pytest.fixture
def client(app: Flask) -> redis.Redis:
    return app.extensions["cache_redis"]  # the test's own database of the real cache service


@contextlib.contextmanager
def subscribed(client: redis.Redis, channel: str) -> Iterator[Callable[[], str]]:
    """Subscribed to ``channel``; yields a function that waits for the next message's text."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=2) is None  # consumes the confirmation

    def next_message() -> str:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                return message["data"].decode()
        raise AssertionError(f"nothing announced on {channel}")

    try:
        yield next_message
    finally:
        pubsub.close()


def make_cache(client: redis.Redis, recorder: Recorder, clock: Callable[[], float] | None = None) -> ReadCache:
    return ReadCache(client, Breaker("cache", 5.0, clock or time.monotonic), recorder.refill_at)


def version(client: redis.Redis, namespace: str) -> int:
    return int(client.hget(f"ns:{namespace}", "version") or 0)


def test_a_value_is_computed_once_then_served(client: redis.Redis) -> None:
    compute = Recorder({"title": "cached"})
    cache = make_cache(client, compute)
    assert cache.cached("ns", "detail", 60, compute) == {"title": "cached"}
    assert cache.cached("ns", "detail", 60, compute) == {"title": "cached"}
    assert compute.calls == 1
    first = version(client, "ns")
    assert first > time.time_ns() // 1000 - 60_000_000, "a new namespace starts at a version from the clock"
    assert client.get(_key("ns", first, "detail")) is not None, "stored under that version"


def test_versions_never_repeat_even_when_the_cache_forgets_them(client: redis.Redis) -> None:
    cache = make_cache(client, Recorder())
    cache.cached("ns", "detail", 60, Recorder("old"))
    cache.invalidate(("ns",), lsn=1)
    seen = {version(client, "ns")}
    client.flushdb()  # a restart, or the namespace's hash evicted
    cache.cached("ns", "detail", 60, Recorder("new"))
    seen.add(version(client, "ns"))
    cache.invalidate(("ns",), lsn=2)
    seen.add(version(client, "ns"))
    assert len(seen) == 3, "each version is new, so no old value can pass for current"
    assert sorted(seen) == list(sorted(seen))


def test_invalidation_moves_to_a_new_version_that_refills_at_the_write_position(client: redis.Redis) -> None:
    old, new = Recorder("old"), Recorder("new")
    cache = make_cache(client, new)
    cache.cached("article:7", "detail", 60, old)
    before = version(client, "article:7")
    with subscribed(client, cache.channel) as announcements:
        cache.invalidate(("article:7", "latest"), lsn=123456)
        message = announcements()
    assert cache.cached("article:7", "detail", 60, new) == "new"
    assert new.refill_positions == [0, 123456], "the first fill had no write to see; the refill must see it"
    assert version(client, "article:7") > before
    assert client.hget("ns:latest", "lsn") == b"123456"
    assert message == f"article:7 {version(client, 'article:7')} latest {version(client, 'latest')}", (
        "the new versions are announced"
    )
    assert cache.cached("article:7", "detail", 60, new) == "new"
    assert new.calls == 1


def test_a_refill_short_of_the_write_position_is_served_but_kept_for_seconds_only(client: redis.Redis) -> None:
    # The primary is down and the replica has not replayed the invalidating write: its value is
    # the best there is (served, not an error), but must not outlive the outage by a full TTL.
    stale = Recorder("replica's value", saw_all=False)
    cache = make_cache(client, stale)
    cache.invalidate(("lists",), lsn=123456)
    assert cache.cached("lists", "list:1:20", 60, stale) == "replica's value"
    entry = json.loads(client.get(_key("lists", version(client, "lists"), "list:1:20")))
    assert entry["fresh_until"] - time.time() <= STALE_TTL * (1 + JITTER)
    assert cache.cached("lists", "list:1:20", 60, stale) == "replica's value"
    assert stale.calls == 1, "still cached while fresh"


def test_a_stampede_on_a_cold_key_computes_once(client: redis.Redis) -> None:
    compute = Recorder("slow", delay=0.3)
    cache = make_cache(client, compute)
    results: list[object] = []

    def read() -> None:
        results.append(cache.cached("ns", "cold", 60, compute))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["slow"] * 8
    assert compute.calls == 1, "one reader filled the key; the others waited for it"


def test_a_key_filled_between_the_read_and_the_lock_is_served_not_rendered_again(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    filler, late = Recorder("filled"), Recorder("rendered again")
    cache, other = make_cache(client, late), make_cache(client, filler)
    read = cache._read

    def read_then_another_fills(namespace: str, name: str) -> tuple[int, int, bytes | None]:
        found = read(namespace, name)
        other.cached(namespace, name, 60, filler)  # stores the entry and releases its lock
        return found

    monkeypatch.setattr(cache, "_read", read_then_another_fills)
    found = cache.lookup("ns", "raced", 60, late)
    assert (found.value, found.source) == ("filled", "shared")
    assert (filler.calls, late.calls) == (1, 0), "the page was rendered once, by the filler"


def test_a_waiter_renders_at_once_when_the_filler_gives_up(client: redis.Redis) -> None:
    compute = Recorder("the waiter's own")
    cache = make_cache(client, compute)
    cache.cached("ns", "warm", 60, Recorder("x"))  # the namespace has a version now
    key = _key("ns", version(client, "ns"), "given-up")
    assert client.set(f"lock:{key}", "a filler", nx=True, px=5000)
    threading.Timer(0.2, client.delete, args=(f"lock:{key}",)).start()  # it fails: nothing stored
    started = time.monotonic()
    assert cache.cached("ns", "given-up", 60, compute) == "the waiter's own"
    waited = time.monotonic() - started
    assert compute.calls == 1
    assert 0.2 <= waited < 1.0, f"waited {waited:.2f} s: not the whole WAIT_FOR_FILL once the lock was gone"


def test_a_soft_expired_value_is_served_while_another_reader_refreshes(client: redis.Redis) -> None:
    first, second = Recorder("first"), Recorder("second")
    cache = make_cache(client, first)
    cache.cached("ns", "graced", 0.001, first)  # fresh for a millisecond, then in its grace period
    time.sleep(0.01)
    key = _key("ns", version(client, "ns"), "graced")
    assert client.set(f"lock:{key}", "someone else refreshing", nx=True, px=5000)
    assert cache.cached("ns", "graced", 60, second) == "first", "served from grace, not recomputed"
    assert second.calls == 0
    client.delete(f"lock:{key}")
    assert cache.cached("ns", "graced", 60, second) == "second", "the next reader refreshes it"


def test_an_unreachable_cache_trips_the_breaker_and_reads_go_to_the_database() -> None:
    clock = FakeClock()
    compute = Recorder("from the database")
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    cache = make_cache(nowhere, compute, clock)
    assert cache.cached("ns", "k", 60, compute) == "from the database"
    assert not cache.breaker.closed
    started = time.monotonic()
    assert cache.cached("ns", "k", 60, compute) == "from the database"
    assert time.monotonic() - started < 0.05, "while open, the cache is not even tried"
    clock.now += 5.1
    assert cache.breaker.closed, "tried again after the breaker's period"
    assert compute.calls == 2
