"""The app's Redis clients and when they send a command again: a Redis blip must cost no
request, and no view may be counted twice.

What redis-py (7.4, pinned) does, read in its source (``redis/client.py``, ``connection.py``):

* A client's ``Retry`` covers every command: ``Redis._execute_command`` runs "send, then read
  the reply" inside ``conn.retry.call_with_retry`` (pipelines and transactions likewise). A
  command sent again after a ``ConnectionError`` may already have run: the reply, not the
  command, may be what was lost. Fine for ``GET`` or ``SET``; an ``HINCRBY`` would count twice.
* ``Redis(host=...)`` defaults to ``Retry(ExponentialWithJitterBackoff(base=1, cap=10), 3)``:
  a closed port took 11 s to fail. ``Redis.from_url`` (used here, by Flask-Limiter and, through
  its own pools, by kombu) gets no retry at all unless given one: the behaviour before this.
* Checking a connection out of the pool already replaces one that the server has closed (a
  Redis restart closes them all) before anything is sent: ``ConnectionPool.get_connection``
  polls it and reconnects. What needs retrying is *connecting* while Redis comes back, and a
  command whose connection dies in flight.

Connecting (socket and handshake, before any command is sent) is always safe to repeat, and a
restart needs it: measured on the compose network, ``docker compose restart redis`` resets
connections, refuses new ones for ~0.1 s, then leaves them unanswered for ~0.4 s (the
container's address is gone; they time out). So every client connects through
``ConnectRetryingConnection``, which keeps trying for ``CONNECT_PATIENCE`` seconds (attempts
bounded by a short ``CONNECT_TIMEOUT``, jittered backoff between them): a restart is ridden
out. It does not wait for a name that does not resolve: that is a stopped service (Docker
drops its name), and a command then fails at once, so requests with Redis down stay fast.

A command, once (possibly) sent, is another matter; there are two clients per Redis:

* ``redis_client``: for idempotent commands (sessions, read-your-writes marks, heartbeats,
  mail marks, the cache). A ``ConnectionError`` (a dropped connection; also ``BusyLoadingError``,
  Redis loading its data after a restart) sends it again, ``REDIS_RETRIES`` times. A read
  timeout does not: a Redis that does not answer within ``SOCKET_TIMEOUT`` is hung or
  overloaded, and sending again would multiply the wait of a request that must fail fast.
* ``counter_client``: sends each command at most once, for increments that count (view counts;
  the rate limiter's hits use the same options, ``counter_client_options``). Only a refusal with
  ``LOADING`` (the command did not run) is sent again; a command that may have reached Redis
  never is: its count is lost (and logged), never doubled.

Riding out a restart must not make an outage slow. A request makes several Redis calls, and
holds a database connection while it does: were each call to wait out ``CONNECT_PATIENCE`` while
Redis is down, requests would take seconds and the database pools run dry (measured under 50
requests/s with Redis stopped: 500s from pool timeouts). So the clients of one Redis server
share an ``Outage``, a circuit breaker: once connecting has failed (patience spent, or the name
gone), connecting fails at once (``RedisUnavailable``) for ``OUTAGE_HOLD`` seconds; then a
single connection probes while the others still fail at once, and its success closes it.

``REDIS_RETRIES=0`` turns all of this off (the unit tests, where nothing listens, use it).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import Connection
from redis.exceptions import BusyLoadingError
from redis.retry import Retry

from app.breaker import Breaker

log = logging.getLogger(__name__)

#: Seconds to establish a connection, and to wait for each read or write. Redis answers in well
#: under a millisecond on the compose network; these bound what an unreachable or hung Redis
#: costs, and a short connect timeout makes the attempts to reconnect frequent.
CONNECT_TIMEOUT = 0.2
SOCKET_TIMEOUT = 1.0
#: How long connecting keeps trying (a restart takes about half of it), unless REDIS_RETRIES=0.
CONNECT_PATIENCE = 1.0
#: The wait before retry n (1, 2, ...): a random share (full jitter) of min(CAP, BASE * 2**n),
#: so 50 ms, 100 ms, 100 ms, ...: ``retry_budget(retries)`` in all at most, about half on average.
BACKOFF_BASE = 0.025
BACKOFF_CAP = 0.1
BACKOFF = ExponentialWithJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE)
#: Seconds connecting fails at once after Redis was found unreachable, before the next probe.
OUTAGE_HOLD = 1.0
#: Failures while connecting: nothing of a command has been sent, so connecting again is safe.
CONNECT_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def retry_budget(retries: int) -> float:
    """The most a command waits between its attempts: 0.25 s for 3 retries (REDIS_RETRIES)."""
    return sum(min(BACKOFF_CAP, BACKOFF_BASE * 2**n) for n in range(1, retries + 1))


def unresolvable(error: BaseException) -> bool:
    """The server's name did not resolve (redis-py raises its error while handling that one)."""
    return isinstance(error.__context__, socket.gaierror)


class RedisUnavailable(redis.TimeoutError):
    """Not even tried: Redis was unreachable a moment ago. No command retry covers it."""


class Outage:
    """What a process knows of one Redis server being unreachable, shared by all its clients.

    After connecting failed, ``check`` fails at once for ``OUTAGE_HOLD`` seconds; then it lets
    one caller probe (the others keep failing at once while it does) and ``connected`` ends it.
    """

    def __init__(self, name: str, hold: float = OUTAGE_HOLD, clock: Callable[[], float] = time.monotonic) -> None:
        self.breaker = Breaker(name, hold, clock)
        self.down = False

    def check(self) -> None:
        """Raise ``RedisUnavailable`` unless this caller may try to connect."""
        if not self.breaker.closed:
            raise RedisUnavailable(f"{self.breaker.name} unreachable; next try in {self.breaker.seconds_left:.1f} s")
        if self.down:
            self.breaker.hold(CONNECT_PATIENCE + self.breaker.seconds)  # this caller probes alone

    def failed(self, error: BaseException) -> None:
        self.down = True
        self.breaker.trip(error)

    def connected(self) -> None:
        if self.down:
            log.info("%s reachable again", self.breaker.name)
            self.down = False
            self.breaker.reset()


class ConnectRetryingConnection(Connection):
    """A connection that keeps trying to connect for ``CONNECT_PATIENCE`` seconds, whatever
    errors its ``retry`` covers for commands (none, if that ``retry`` makes no retries).

    Every way redis-py connects (``connect``, and reconnecting before sending a command again)
    goes through ``connect_check_health``; redis-py's own retries there would nest in this loop.
    Once patience runs out the error is a ``TimeoutError``, which no command retry covers: a
    command in flight when Redis went away waits for it once, not once per attempt. With an
    ``outage`` (the server's shared breaker), a failure to connect opens it, and while it is
    open connecting fails at once.
    """

    def __init__(self, *args: Any, outage: Outage | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = outage

    def connect(self) -> None:
        self.connect_check_health(check_health=True)

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self.outage is None:
            self._connect_patiently(check_health)
            return
        self.outage.check()
        try:
            self._connect_patiently(check_health)
        except CONNECT_ERRORS as error:
            self.outage.failed(error)
            raise
        self.outage.connected()

    def _connect_patiently(self, check_health: bool) -> None:
        patience = CONNECT_PATIENCE if self.retry.get_retries() > 0 else 0.0
        deadline = time.monotonic() + patience
        failures = 0
        while True:
            try:
                super().connect_check_health(check_health, retry_socket_connect=False)
                return
            except CONNECT_ERRORS as error:
                self.disconnect()
                if unresolvable(error) or not patience:
                    raise
                failures += 1
                wait = BACKOFF.compute(failures)
                if time.monotonic() + wait >= deadline:
                    raise redis.TimeoutError(f"Redis unreachable for {patience:g} s: {error}") from error
                time.sleep(wait)


def _connection_options(outage: Outage | None) -> dict[str, Any]:
    # No health-check PING before using an idle connection: the pool's checkout already replaces
    # one the server closed, and the PING's own retries would nest in the connect retries.
    return {
        "connection_class": ConnectRetryingConnection,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
    } | ({"outage": outage} if outage is not None else {})


def retrying_client_options(retries: int, outage: Outage | None = None) -> dict[str, Any]:
    """``redis.from_url`` options for a client whose commands are safe to send again."""
    retry = Retry(BACKOFF, retries, supported_errors=(redis.ConnectionError,))
    return _connection_options(outage) | {"retry": retry}


def counter_client_options(retries: int, outage: Outage | None = None) -> dict[str, Any]:
    """``redis.from_url`` options for a client that sends each command at most once."""
    # Only a refusal while loading: the command did not run, so sending it again is safe.
    return _connection_options(outage) | {"retry": Retry(BACKOFF, retries, supported_errors=(BusyLoadingError,))}


def redis_client(url: str, retries: int, outage: Outage | None = None) -> redis.Redis:
    """A client for idempotent commands: one whose connection dropped is sent again."""
    return redis.Redis.from_url(url, **retrying_client_options(retries, outage))


def counter_client(url: str, retries: int, outage: Outage | None = None) -> redis.Redis:
    """A client for increments that count: never sends again a command that may have run."""
    return redis.Redis.from_url(url, **counter_client_options(retries, outage))
