"""Read/write routing between the primary (`db`) and the streaming replica (`db-replica`).

The rules (after GitLab's PostgreSQL load balancing):

* Writes, and every statement of a transaction that has written, go to the primary.
* A plain read goes to the replica, unless
  - the replica is unreachable, or lags more than the configured bytes/seconds: it is
    skipped for a short back-off and reads use the primary;
  - the reader recently wrote (read-your-writes): after each commit the primary's WAL
    position is stored in Redis for the writer (a session's user or an API key), and the
    replica serves that writer only once ``pg_last_wal_replay_lsn()`` has reached it.
* The replica's position is fetched at most once per ``REPLICA_LSN_CACHE_MS`` per process.
* Read-only mode: when the primary cannot be reached, a breaker opens for a few seconds
  (``PRIMARY_BREAKER_SECONDS``). While it is open every read goes to the replica, however far
  it got (a reader whose own writes it lacks is told the page may be a moment behind), and in
  a request a write fails at once with ``ReadOnly`` instead of waiting on a connection. A
  background task keeps trying the primary: its retries back off on their own.

``decide_read_target`` is the pure decision; ``ReplicaMonitor`` keeps the per-process view
of the replica; ``WritePositions`` keeps the writers' positions in Redis; ``RoutingSession``
applies the decision to each transaction of Flask-SQLAlchemy's session.
"""

from __future__ import annotations

import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import redis
import sqlalchemy as sa
from flask import current_app, g, has_app_context, has_request_context
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction

from app.breaker import Breaker
from app.database import unit_of_work
from app.database.wal import UNKNOWN_LSN, ReplicaPosition, primary_lsn, replica_position
from app.metrics import DB_READS
from app.services.errors import ReadOnly

log = logging.getLogger(__name__)
T = TypeVar("T")

PRIMARY = "primary"
REPLICA = "replica"
#: The reason of a read-only-mode read from a replica that lacks what the reader must see.
REPLICA_BEHIND_READ_ONLY = "primary_down_replica_behind"
#: How long the primary is skipped after a connection to it failed.
PRIMARY_BREAKER_SECONDS = 3.0
#: Seconds a web replica waits for a database's name to resolve and its port to answer before
#: it counts it as down (both take milliseconds; a refused write answers within 1 s).
CONNECT_SECONDS = 0.5

# Keys in Session.info for the current transaction.
_WROTE = "newsdesk.wrote"
_DECISION = "newsdesk.read_decision"
#: How many ``use_primary`` blocks are open on this session (reads go to the primary while > 0).
_PINNED = "newsdesk.pinned_to_primary"
_MIN_LSN = "newsdesk.min_lsn"
#: The primary's WAL position after this session's latest committed write (request scope).
_SESSION_LSN = "newsdesk.session_lsn"
#: The most seconds the replica may be behind for the current reads (None: the configured limit).
_MAX_LAG = "newsdesk.max_lag_seconds"
#: How many reads of this session went to a replica lacking what they had to see (request scope).
_BEHIND_READS = "newsdesk.behind_reads"


@dataclass(frozen=True)
class Decision:
    target: str
    reason: str


@dataclass(frozen=True)
class LagLimits:
    max_bytes: int
    max_seconds: float


def decide_read_target(
    position: ReplicaPosition | None,
    required_lsn: int | None,
    limits: LagLimits,
    primary_up: bool = True,
) -> Decision:
    """Where a read goes, given the replica's position (None: unreachable or backing off),
    the reader's last write position (None: no recent write) and whether the primary is up."""
    if position is None:
        return Decision(PRIMARY, "replica_unavailable")
    if not primary_up:
        # Read-only mode: the replica is the best there is, whatever it has replayed.
        if required_lsn is not None and (position.replay_lsn or 0) < required_lsn:
            return Decision(REPLICA, REPLICA_BEHIND_READ_ONLY)
        return Decision(REPLICA, "primary_down")
    if not position.in_recovery or not position.streaming:
        return Decision(PRIMARY, "replica_not_streaming")
    if position.lag_bytes > limits.max_bytes or position.lag_seconds > limits.max_seconds:
        return Decision(PRIMARY, "replica_lagging")
    if required_lsn is None:
        return Decision(REPLICA, "no_recent_write")
    if position.replay_lsn is not None and position.replay_lsn >= required_lsn:
        return Decision(REPLICA, "replica_caught_up")
    return Decision(PRIMARY, "replica_behind_writer")


class ReplicaMonitor:
    """This process's view of the replica: its position, cached for a few milliseconds,
    and a back-off after it failed or lagged."""

    def __init__(
        self,
        engine: Callable[[], sa.Engine],
        limits: LagLimits,
        cache_seconds: float,
        backoff_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        read_position: Callable[[sa.Connection], ReplicaPosition] = replica_position,
    ) -> None:
        """``engine()`` is the replica's engine (created lazily, after fork); ``read_position``
        reads its position over a connection."""
        self._engine = engine
        self._read_position = read_position
        self.limits = limits
        self._cache_seconds = cache_seconds
        self._backoff_seconds = backoff_seconds
        self._clock = clock
        self._position: ReplicaPosition | None = None
        self._fetched_at = float("-inf")
        self._backoff_until = float("-inf")
        self._lock = threading.Lock()

    def mark_unavailable(self, why: str) -> None:
        """Skip the replica for the back-off period."""
        self._back_off(why)
        self._position = None

    def _back_off(self, why: str) -> None:
        if self._clock() >= self._backoff_until:
            log.warning("replica skipped for %.1fs: %s", self._backoff_seconds, why)
        self._backoff_until = self._clock() + self._backoff_seconds

    def position(self, *, lagging_ok: bool = False) -> ReplicaPosition | None:
        """The replica's position, or None while it is unreachable, lagging or backing off.
        With ``lagging_ok`` (read-only mode: the replica is all there is), a lagging one's too."""
        now = self._clock()
        if now < self._backoff_until:
            return self._position if lagging_ok else None
        if now - self._fetched_at <= self._cache_seconds:
            return self._position
        # One greenlet refreshes; the others use the previous value meanwhile.
        if not self._lock.acquire(blocking=self._position is None):
            return self._position
        try:
            with self._engine().connect() as conn:
                position = self._read_position(conn)
        except DBAPIError as exc:
            self.mark_unavailable(f"{type(exc.orig).__name__ if exc.orig else type(exc).__name__}")
            return None
        finally:
            self._lock.release()
        self._position, self._fetched_at = position, self._clock()
        lagging = position.lag_bytes > self.limits.max_bytes or position.lag_seconds > self.limits.max_seconds
        if lagging:
            self._back_off(f"lagging {position.lag_bytes} bytes / {position.lag_seconds:.1f}s")
            return position if lagging_ok else None
        return position


class WritePositions:
    """The primary's WAL position after each writer's latest commit, in Redis with a short expiry."""

    # Keep the highest position: two concurrent commits by one writer may report out of order.
    _REMEMBER = """
    local current = redis.call('GET', KEYS[1])
    if (not current) or tonumber(current) < tonumber(ARGV[1]) then
      redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    else
      redis.call('EXPIRE', KEYS[1], ARGV[2])
    end
    return 1
    """

    def __init__(self, client: redis.Redis, ttl_seconds: int, prefix: str = "newsdesk:ryw:") -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._prefix = prefix
        self._remember = client.register_script(self._REMEMBER)

    def remember(self, writer: str, lsn: int) -> None:
        self._remember(keys=[self._prefix + writer], args=[lsn, self._ttl])

    def required(self, writer: str) -> int | None:
        raw = cast("bytes | None", self._client.get(self._prefix + writer))  # a sync client
        return int(raw) if raw is not None else None


class Router:
    """Binds the monitor, the write positions and the primary's breaker of one app."""

    def __init__(self, monitor: ReplicaMonitor, positions: WritePositions, primary: Breaker) -> None:
        self.monitor = monitor
        self.positions = positions
        #: Open while the primary is known to be unreachable: read-only mode.
        self.primary = primary

    def decide(self, writer: str | None, min_lsn: int = 0, max_lag_seconds: float | None = None) -> Decision:
        """Decide for ``writer``'s read that must also see at least ``min_lsn`` (0: anything),
        from a replica at most ``max_lag_seconds`` behind (None: the configured limit)."""
        primary_up = self.primary.closed
        required = min_lsn or None
        if writer is not None:
            try:
                written = self.positions.required(writer)
            except redis.RedisError as exc:
                if primary_up:
                    log.warning("read-your-writes position unknown (%s): reading from the primary", exc)
                    return Decision(PRIMARY, "writer_position_unknown")
                written = UNKNOWN_LSN  # read-only mode: the replica, which may lack the writer's writes
            if written is not None:
                required = max(written, min_lsn)
        limits = self.monitor.limits
        if max_lag_seconds is not None:
            limits = replace(limits, max_seconds=min(limits.max_seconds, max_lag_seconds))
        return decide_read_target(self.monitor.position(lagging_ok=not primary_up), required, limits, primary_up)

    def check_primary(self) -> None:
        """In a request, while the primary is known to be down, refuse at once (ReadOnly)
        instead of waiting for a connection to fail."""
        if not self.primary.closed and has_request_context():
            raise read_only_error(self.primary)

    def remember_commit(self, engine: sa.Engine, writer: str | None) -> int | None:
        """The primary's WAL position now (after a commit), remembered for ``writer`` if given."""
        if not self.primary.closed:
            return None
        try:
            with engine.connect() as conn:
                lsn = primary_lsn(conn)
        except (DBAPIError, ReadOnly) as exc:
            log.warning("could not read the primary's WAL position: %s", exc)
            return None
        if writer is not None:
            try:
                self.positions.remember(writer, lsn)
            except redis.RedisError as exc:
                # The write itself is committed; losing the mark only risks one stale read.
                log.warning("could not record the write position of %s: %s", writer, exc)
        return lsn


def current_writer() -> str | None:
    """The identity whose writes this request must see: set by authentication in ``g``."""
    if has_request_context() or has_app_context():
        return g.get("writer")
    return None


def current_router() -> Router:
    return current_app.extensions["db_router"]


def _is_plain_read(clause: Any) -> bool:
    return isinstance(clause, sa.Select) and clause._for_update_arg is None


class RoutingSession(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session, choosing primary or replica per transaction.

    Its state lives in ``Session.info``: whether the transaction wrote, the read decision
    taken for it, the ``use_primary`` pins, the WAL position reads must reach, and the
    after-commit queue (app.database.unit_of_work).
    """

    def close(self) -> None:
        """End the session (Flask-SQLAlchemy does at every request's end). A connection that died
        meanwhile (its server restarted) fails the rollback that closing does: it is discarded
        rather than turning an answered request into an error."""
        try:
            super().close()
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            log.warning("a database connection died before the session ended; discarded: %s", error.orig)
            self.invalidate()

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: sa.Engine | sa.Connection | None = None,
        **kwargs: Any,
    ) -> sa.Engine | sa.Connection:
        if bind is not None:
            return bind
        engines = self._db.engines
        router = current_router()
        if self._flushing or isinstance(clause, (sa.UpdateBase, sa.TextClause)):
            self.info[_WROTE] = True
            router.check_primary()
            return engines[None]
        if self.info.get(_WROTE) or not _is_plain_read(clause):
            router.check_primary()
            return engines[None]
        decision = self.info.get(_DECISION)
        # A decision for the primary does not outlive the primary's breaker opening (another
        # request may open it while this one waits), and a pin yields to read-only mode: the
        # replica is then the best there is.
        if decision is None or (decision.target == PRIMARY and not router.primary.closed):
            if "replica" not in engines or (self.info.get(_PINNED) and router.primary.closed):
                decision = Decision(PRIMARY, "forced_primary")
            else:
                min_lsn = max(self.info.get(_MIN_LSN, 0), self.info.get(_SESSION_LSN, 0))
                decision = router.decide(current_writer(), min_lsn, self.info.get(_MAX_LAG))
            self.info[_DECISION] = decision
            DB_READS.labels(decision.target, decision.reason).inc()
            if decision.reason == REPLICA_BEHIND_READ_ONLY:
                self.info[_BEHIND_READS] = self.behind_reads + 1
        if decision.target == REPLICA:
            return engines["replica"]
        router.check_primary()
        return engines[None]

    # -- what app.database exposes as use_primary / reading_at_least / replica_fallback --

    def pin_primary(self) -> None:
        """Reads go to the primary until the matching ``unpin_primary`` (pins nest)."""
        self.info[_PINNED] = self.info.get(_PINNED, 0) + 1
        self.info.pop(_DECISION, None)

    def unpin_primary(self) -> None:
        depth = self.info.get(_PINNED, 0) - 1
        if depth > 0:
            self.info[_PINNED] = depth
        else:
            self.info.pop(_PINNED, None)
        self.info.pop(_DECISION, None)

    def require_position(self, lsn: int | None) -> None:
        """Reads must see at least WAL position ``lsn`` (None: no requirement)."""
        self.info.pop(_DECISION, None)
        if lsn:
            self.info[_MIN_LSN] = lsn
        else:
            self.info.pop(_MIN_LSN, None)

    def limit_lag(self, seconds: float | None) -> None:
        """Reads use the replica only while it is at most ``seconds`` behind (None: the configured limit)."""
        self.info.pop(_DECISION, None)
        if seconds is None:
            self.info.pop(_MAX_LAG, None)
        else:
            self.info[_MAX_LAG] = seconds

    @property
    def behind_reads(self) -> int:
        """Reads of this session served, in read-only mode, by a replica lacking what they had to see."""
        return int(self.info.get(_BEHIND_READS, 0))

    @property
    def wrote(self) -> bool:
        """Whether the current transaction has written (its statements all go to the primary)."""
        return bool(self.info.get(_WROTE))

    @property
    def read_from_replica(self) -> bool:
        """Whether the current transaction's reads were sent to the replica."""
        decision = self.info.get(_DECISION)
        return decision is not None and decision.target == REPLICA

    @property
    def committed_position(self) -> int | None:
        """The primary's WAL position recorded after this session's latest write (None: none yet)."""
        return self.info.get(_SESSION_LSN)


@event.listens_for(RoutingSession, "after_commit")
def _after_commit(session: Session) -> None:
    """After a write: this session's later reads (refreshing expired objects, say), and the
    writer's later requests, must see it. Then the work the transaction registered runs."""
    wrote = session.info.pop(_WROTE, False)
    session.info.pop(_DECISION, None)
    if wrote and isinstance(session, RoutingSession):
        lsn = current_router().remember_commit(session._db.engines[None], current_writer())
        # Unknown position: later reads in this session go to the primary.
        session.info[_SESSION_LSN] = max(session.info.get(_SESSION_LSN, 0), lsn if lsn is not None else UNKNOWN_LSN)
    unit_of_work.run_hooks(session)


@event.listens_for(RoutingSession, "after_rollback")
def _forget_transaction(session: Session) -> None:
    session.info.pop(_WROTE, None)
    session.info.pop(_DECISION, None)


@event.listens_for(RoutingSession, "after_transaction_end")
def _drop_uncommitted_work(session: Session, transaction: SessionTransaction) -> None:
    unit_of_work.drop_hooks(session, transaction)


def read_only_error(breaker: Breaker) -> ReadOnly:
    """``ReadOnly``, saying when the primary will be tried again."""
    return ReadOnly(retry_after=max(1, math.ceil(breaker.seconds_left)))


#: PgBouncer's errors when the server behind it cannot be reached (its src/client.c, janitor.c):
#: the connection to PgBouncer is fine, the database is not. ``server conn crashed`` is a server
#: lost mid-transaction; ``query_wait_timeout`` a query that found no server connection in time.
POOLER_UNAVAILABLE = (
    "pgbouncer cannot connect to server",
    "server login has been failing",
    "server conn crashed",
    "query_wait_timeout",
)


def treat_pooler_outages_as_disconnects(engine: sa.Engine) -> None:
    """Through PgBouncer, a database that is down answers with an error on a live connection,
    not a failed connect: mark it a disconnect, as a direct connection's failure is, so the pool
    drops the connection and the primary's breaker opens (register before ``watch_primary``)."""

    @event.listens_for(engine, "handle_error")
    def pooler_unavailable(context: ExceptionContext) -> None:
        message = str(context.original_exception)
        if any(text in message for text in POOLER_UNAVAILABLE):
            context.is_disconnect = True


def watch_primary(engine: sa.Engine, breaker: Breaker) -> None:
    """Open ``breaker`` when a connection to the primary fails or drops, and close it when one
    succeeds (a probe, a task). In a request the failure becomes ``ReadOnly``: a write is
    answered 503, and a read (app.database.replica_fallback) runs again on the replica."""

    @event.listens_for(engine, "handle_error")
    def primary_failed(context: ExceptionContext) -> None:
        # A failed pre-ping is followed by a reconnect: only the reconnect's failure counts.
        # A failed connect has no connection; a dropped one is a disconnect.
        if context.is_pre_ping or not (context.is_disconnect or context.connection is None):
            return
        breaker.trip(context.original_exception)
        if has_request_context():
            raise read_only_error(breaker)

    @event.listens_for(engine, "connect")
    def primary_reached(*_: Any) -> None:
        breaker.reset()


def connect_within(engine: sa.Engine, seconds: float) -> None:
    """Under gevent, find out within ``seconds`` whether ``engine``'s server is there at all
    before libpq connects, cooperatively.

    libpq resolves the host name with a blocking getaddrinfo, which stalls every request of
    the process while Docker's DNS takes its time (seconds, now and then, for a stopped
    service's name); and its ``connect_timeout`` cannot go below 2 s, while a write refused in
    read-only mode must answer within 1 s. So the name is resolved through gevent, a TCP
    connection to the address is opened and closed (a server that is gone refuses it, or never
    answers), both within ``seconds`` (on a saturated process, see ``finished_within``), and
    libpq is handed the address (``hostaddr``). Only that much is bounded so tightly: a server
    that is there but slow to authenticate (a loaded machine) gets libpq's own timeout, rather
    than being taken for a dead one. A failure is a DBAPI OperationalError, so it trips the
    breaker like any other.
    """
    if not gevent_patched():
        return

    @event.listens_for(engine, "do_connect")
    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        import gevent

        host = cparams.get("host")
        if not host or host.startswith("/") or cparams.get("hostaddr"):
            return None  # a Unix socket, or an address already: libpq as usual
        port = int(cparams.get("port") or 5432)
        error = dialect.loaded_dbapi.OperationalError
        deadline = time.monotonic() + seconds
        try:
            found = finished_within(seconds, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            address = str(found[0][4][0])
            finished_within(deadline - time.monotonic(), lambda: socket.create_connection((address, port)).close())
        except gevent.Timeout as timeout:
            raise error(f"{host}:{port} did not answer within {seconds:g} s") from timeout
        except OSError as failure:  # socket.gaierror included: the name is gone
            raise error(f"cannot reach {host}:{port}: {failure}") from failure
        return dialect.connect(*cargs, **{**cparams, "hostaddr": address})


#: How late a bound may be noticed and still count: later, the loop could not keep time.
LOOP_LATE = 0.1
#: ``finished_within`` waits at most this many times its bound for a loop that cannot keep time.
PATIENCE = 4


def finished_within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, run in a greenlet of its own, if it finishes within ``seconds``; else
    ``gevent.Timeout`` (``work``'s own exception if it fails).

    A saturated process (a replica at its CPU share with hundreds of requests queued) turns
    its loop once every half second or more, and notices an answer that came within a
    millisecond only then, in the same turn as the bound's expiry, which it may wake first: a
    server that answered at once was taken for a dead one, and the breakers opened (make
    bench, at 80% of the peak). A bound noticed more than LOOP_LATE late is no evidence that
    the server was slow, so the wait goes on, for up to PATIENCE times the bound in all. On a
    loop that keeps time, a server that does not answer is refused within ``seconds``."""
    import gevent

    job = gevent.spawn(work)
    started = time.monotonic()
    due, last = started + seconds, started + PATIENCE * seconds
    while True:
        job.join(timeout=max(due - time.monotonic(), 0.0))
        if job.ready():
            return cast("T", job.get())
        now = time.monotonic()
        if now - due <= LOOP_LATE or now >= last:
            job.kill(block=False)
            raise gevent.Timeout(seconds)
        due = min(now + LOOP_LATE / 2, last)  # the loop was late: look again after one more turn


def gevent_patched() -> bool:
    """Whether this process runs under gevent's monkey-patching (the web replicas do)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


def init_router(app: Any, primary: sa.Engine, replica: Callable[[], sa.Engine]) -> Router:
    settings = app.extensions["settings"]
    breaker = Breaker("primary database", PRIMARY_BREAKER_SECONDS)
    treat_pooler_outages_as_disconnects(primary)
    treat_pooler_outages_as_disconnects(replica())
    watch_primary(primary, breaker)
    connect_within(primary, CONNECT_SECONDS)
    connect_within(replica(), CONNECT_SECONDS)
    router = Router(
        ReplicaMonitor(
            replica,
            LagLimits(settings.replica_max_lag_bytes, settings.replica_max_lag_seconds),
            cache_seconds=settings.replica_lsn_cache_ms / 1000,
            backoff_seconds=settings.replica_backoff_seconds,
        ),
        WritePositions(app.extensions["redis"], settings.read_your_writes_ttl),
        breaker,
    )
    app.extensions["db_router"] = router
    return router
