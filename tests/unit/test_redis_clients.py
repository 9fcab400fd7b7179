"""Which Redis commands are sent again after a dropped connection, and how long connecting
keeps trying.

A small server that speaks just enough of Redis's protocol stands in for a misbehaving one:
it hangs up during the handshake of its first connections (a Redis coming back), then hangs
up on (or refuses with LOADING) each command, and counts how often each command reached it.
The integration tests do the same to the real Redis.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import BinaryIO

import pytest
import redis
from redis import backoff

from app import create_app
from app.config import Settings
from app.redis_clients import (
    BACKOFF,
    BACKOFF_CAP,
    CONNECT_PATIENCE,
    CONNECT_TIMEOUT,
    OUTAGE_HOLD,
    Outage,
    RedisUnavailable,
    counter_client,
    counter_client_options,
    redis_client,
    retry_budget,
    retrying_client_options,
)
from tests.support import UNIT_ENV, FakeClock, offline_app

RETRIES = 3
#: What redis-py sends on a new connection before the command (CLIENT SETINFO; SELECT for a db).
HANDSHAKE = {b"CLIENT": b"+OK\r\n", b"SELECT": b"+OK\r\n"}


class FaultyRedis:
    """Hangs up during the handshake of its first ``unready`` connections and answers it on
    later ones; then, per command, answers ``LOADING`` the first ``loading`` times it arrives,
    then ``:1`` if ``reply``, else closes the connection without a reply."""

    def __init__(self, *, unready: int = 0, loading: int = 0, reply: bool = False) -> None:
        self.unready = unready
        self.loading = loading
        self.reply = reply
        self.arrived: Counter[bytes] = Counter()
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._server.getsockname()[1]}/0"
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> FaultyRedis:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            ready = self.connections > self.unready
            threading.Thread(target=self._session, args=(conn, ready), daemon=True).start()

    def _session(self, conn: socket.socket, ready: bool) -> None:
        with conn, conn.makefile("rb") as stream:
            while (command := read_command(stream)) is not None:
                name = command[0].upper()
                if name in HANDSHAKE:
                    if not ready:
                        return
                    conn.sendall(HANDSHAKE[name])
                    continue
                self.arrived[name] += 1
                if self.arrived[name] <= self.loading:
                    conn.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")
                elif self.reply:
                    conn.sendall(b":1\r\n")
                else:
                    return


def read_command(stream: BinaryIO) -> list[bytes] | None:
    """One RESP array of bulk strings (how redis-py sends every command), or None at EOF."""
    header = stream.readline()
    if not header:
        return None
    parts = []
    for _ in range(int(header[1:])):
        length = int(stream.readline()[1:])
        parts.append(stream.read(length + 2)[:-2])
    return parts


@pytest.fixture
def server() -> Iterator[FaultyRedis]:
    """Hangs up on every command after the handshake."""
    with FaultyRedis() as faulty:
        yield faulty


def test_the_retry_budget_is_what_redis_py_waits_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff.random, "random", lambda: 1.0)  # the jitter's upper bound
    assert sum(BACKOFF.compute(n) for n in range(1, RETRIES + 1)) == pytest.approx(retry_budget(RETRIES))
    assert retry_budget(RETRIES) == pytest.approx(0.25)
    assert retry_budget(0) == 0


def test_the_retrying_client_resends_a_command_whose_connection_dropped(server: FaultyRedis) -> None:
    with pytest.raises(redis.ConnectionError):
        redis_client(server.url, RETRIES).get("k")
    assert server.arrived[b"GET"] == 1 + RETRIES


def test_the_counter_client_never_resends_a_command_that_reached_redis(server: FaultyRedis) -> None:
    with pytest.raises(redis.ConnectionError):
        counter_client(server.url, RETRIES).hincrby("views", "1", 1)
    assert server.arrived[b"HINCRBY"] == 1


def test_a_command_refused_while_loading_is_resent_by_both_clients() -> None:
    """LOADING means the command did not run: sending it again counts it once."""
    for make in (redis_client, counter_client):
        with FaultyRedis(loading=2, reply=True) as faulty:
            assert make(faulty.url, RETRIES).hincrby("views", "1", 1) == 1
            assert faulty.arrived[b"HINCRBY"] == 3


def test_both_clients_keep_connecting_while_redis_comes_back() -> None:
    """Nothing of the command is sent before the handshake succeeds: both clients connect
    again, and the command is sent once, when Redis answers."""
    for make in (redis_client, counter_client):
        with FaultyRedis(unready=5, reply=True) as faulty:
            assert make(faulty.url, RETRIES).hincrby("views", "1", 1) == 1
            assert faulty.connections == 6
            assert faulty.arrived[b"HINCRBY"] == 1


def test_connecting_gives_up_when_its_patience_runs_out() -> None:
    for make in (redis_client, counter_client):
        with FaultyRedis(unready=1000) as faulty:
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError, match="unreachable"):
                make(faulty.url, RETRIES).hincrby("views", "1", 1)
            assert CONNECT_PATIENCE - BACKOFF_CAP <= time.monotonic() - started < CONNECT_PATIENCE + 0.5
            assert faulty.arrived[b"HINCRBY"] == 0


def test_a_connect_that_times_out_is_retried() -> None:
    """A restarting Redis's address stops answering for a moment: connects time out (each after
    CONNECT_TIMEOUT) and are tried again until the patience runs out."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = listener.getsockname()
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:  # fill the accept queue: further connection attempts go unanswered
        filler.setblocking(False)
        filler.connect_ex(address)
    try:
        for make in (redis_client, counter_client):
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError, match="unreachable"):
                make(f"redis://127.0.0.1:{address[1]}/0", RETRIES).get("k")
            elapsed = time.monotonic() - started
            assert CONNECT_PATIENCE - BACKOFF_CAP <= elapsed < CONNECT_PATIENCE + CONNECT_TIMEOUT + 0.5
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_stopped_redis_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped compose service's name no longer resolves (Docker drops it): there is nothing
    to wait for, and a write with Redis down must answer within 1 s."""
    lookups = []

    def stopped(host: str, *_: object, **__: object) -> None:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", stopped)
    for make in (redis_client, counter_client):
        lookups.clear()
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError, match="Name or service not known"):
            make("redis://redis:6379/0", RETRIES).get("k")
        assert time.monotonic() - started < retry_budget(RETRIES) + 0.5
        assert lookups == ["redis"], "connecting is not retried"


def test_redis_retries_0_turns_every_retry_off() -> None:
    with FaultyRedis(unready=1, reply=True) as faulty:
        with pytest.raises(redis.ConnectionError):
            redis_client(faulty.url, 0).get("k")
        assert faulty.connections == 1


def test_the_app_counts_views_and_limiter_hits_with_the_counter_client() -> None:
    app = offline_app()
    retries = app.extensions["settings"].redis_retries
    assert app.extensions["redis_counters"].get_retry() == counter_client_options(retries)["retry"]
    assert app.extensions["redis"].get_retry() == retrying_client_options(retries)["retry"]
    limited = create_app(Settings.from_env({**UNIT_ENV, "RATELIMIT_STORAGE_URL": "redis://127.0.0.1:1/3"}))
    expected = counter_client_options(limited.extensions["settings"].redis_retries)["retry"]
    assert limited.config["RATELIMIT_STORAGE_OPTIONS"]["retry"] == expected


def test_after_connecting_failed_connecting_fails_at_once_until_a_probe_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Redis down a request must not wait on every Redis call: the clients of one server
    share an Outage; after a failure, nothing is tried for OUTAGE_HOLD, then one probe is."""
    clock = FakeClock()
    outage = Outage("Redis", clock=clock)
    lookups: list[str] = []
    resolve = socket.getaddrinfo

    def stopped(host: str, *_: object, **__: object) -> None:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", stopped)
    sessions = redis_client("redis://redis:6379/2", RETRIES, outage)
    counters = counter_client("redis://redis:6379/2", RETRIES, outage)
    with pytest.raises(redis.ConnectionError, match="Name or service not known"):
        sessions.get("k")
    for client in (sessions, counters, sessions):
        with pytest.raises(RedisUnavailable):
            client.get("k")
    assert lookups == ["redis"], "nothing was tried while the breaker was open"
    clock.now += OUTAGE_HOLD
    with pytest.raises(redis.ConnectionError, match="Name or service not known"):
        counters.hincrby("views", "1", 1)  # the probe, which fails: open again
    assert lookups == ["redis", "redis"]
    with pytest.raises(RedisUnavailable):
        sessions.get("k")
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    clock.now += OUTAGE_HOLD
    with FaultyRedis(unready=0, reply=True) as faulty:
        back = counter_client(faulty.url, RETRIES, outage)
        assert back.hincrby("views", "1", 1) == 1  # the probe succeeds: closed
        assert not outage.down
        assert back.hincrby("views", "1", 1) == 1


def test_while_one_caller_probes_the_others_fail_at_once() -> None:
    clock = FakeClock()
    outage = Outage("Redis", clock=clock)
    outage.failed(redis.ConnectionError("refused"))
    with pytest.raises(RedisUnavailable):
        outage.check()
    clock.now += OUTAGE_HOLD
    outage.check()  # this caller probes
    with pytest.raises(RedisUnavailable):
        outage.check()
    outage.connected()
    outage.check()


def test_the_clients_of_one_redis_server_share_its_outage() -> None:
    app = create_app(
        Settings.from_env(
            {
                **UNIT_ENV,
                "REDIS_RETRIES": "3",
                "REDIS_URL": "redis://redis:6379/2",
                "RATELIMIT_STORAGE_URL": "redis://redis:6379/3",
                "CACHE_REDIS_URL": "redis://cache:6379/0",
            }
        )
    )
    outage = app.extensions["redis"].connection_pool.connection_kwargs["outage"]
    assert isinstance(outage, Outage)
    assert app.extensions["redis_counters"].connection_pool.connection_kwargs["outage"] is outage
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["outage"] is outage
    cache_outage = app.extensions["cache_redis"].connection_pool.connection_kwargs["outage"]
    assert isinstance(cache_outage, Outage) and cache_outage is not outage
    assert "outage" not in offline_app().extensions["redis"].connection_pool.connection_kwargs
