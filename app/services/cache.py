"""The shared read cache (the `cache` Redis): article detail, list pages and popular.

Correctness after a write comes from versioned namespaces rather than key scans: every
cached value lives under ``c:<namespace>:<version>:<name>``. A write bumps the version of
what it changed (``latest`` for the numbered pages, ``archive`` for pages after a cursor,
``article:<id>`` for one article) and records the primary's WAL position with it, and
announces the new versions on CHANNEL (app.response_cache keeps pages in each process's
memory and drops them on that message); the next reader anywhere misses, and refills the entry
only from a database that has replayed at least that position (the replica if it has caught
up, else the primary). So a lagging replica can never put the old value back. One exception:
with the primary down and the replica short of that position, the replica's value is served
(the best there is, rather than an error) and kept only for STALE_TTL seconds, so it is
replaced within seconds of the primary's return.

Stampede protection: one request per key recomputes (a short NX lock); the others serve the
previous value while it is within its grace period, or wait briefly for the new one. TTLs
carry jitter so that entries filled together do not expire together.

If the cache is unreachable, reads go to the database (slower, never an error), and the
process stops trying the cache for a few seconds (a breaker) instead of paying a timeout
per request.

``ReadCache`` holds the client, the breaker and the Lua script of one app
(``app.extensions["cache"]``); the functions below use the current app's.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import redis
from flask import Flask, current_app

from app.breaker import Breaker
from app.database import committed_position, db, reading_at_least
from app.database.wal import UNKNOWN_LSN, primary_lsn
from app.metrics import CACHE_REQUESTS

log = logging.getLogger(__name__)
T = TypeVar("T")

#: What a new article changes: the first (and every numbered) page, the totals, popular.
LATEST = "latest"
#: Pages after a cursor: articles older than a given one. A new article never changes them;
#: an edit or a deletion may.
ARCHIVE = "archive"
#: Announced when a key is revoked: processes that keep API keys in memory drop them.
KEYS = "keys"
#: Where every invalidation is announced, for the processes that keep pages in memory
#: (app.response_cache): one message per invalidation, ``"<namespace> <version> ..."``.
#: Pub/sub ignores database numbers: the channel names the database (channel_of).
CHANNEL = "newsdesk:cache:versions"
DETAIL_TTL = 60.0
LIST_TTL = 30.0
POPULAR_TTL = 10.0
#: Soft TTL of a value refilled, with the primary down, from a replica short of the invalidation.
STALE_TTL = 2.0
#: How long past its soft expiry a value may still be served while one request refreshes it.
GRACE = 30.0
JITTER = 0.1
LOCK_MS = 5000
#: How long a request waits for another's fill before rendering the value itself. A render that
#: takes longer than this is a saturated machine's, where rendering again only adds to the load
#: the lock is there to spare (with 1 s, make bench's read/write run counted the home page's
#: waiters as misses); still well inside LOCK_MS, after which a dead filler's lock is gone.
WAIT_FOR_FILL = 2.5
#: The polls for the fill: the first after 20 ms, then each interval 1.5 times the last, up to 100 ms.
FILL_POLL = (0.02, 1.5, 0.1)
BREAKER_SECONDS = 5.0

# One round trip for a lookup: the namespace's version and invalidation LSN, and the value
# stored under that version. (Each round trip costs the replica CPU in the network stack.)
# A namespace without a hash (never invalidated, or evicted) starts at a new version.
_READ = """
local state = redis.call('HMGET', KEYS[1], 'version', 'lsn')
local version = state[1]
if not version then
  version = ARGV[3]
  redis.call('HSET', KEYS[1], 'version', version)
end
return {version, state[2] or '0', redis.call('GET', ARGV[1] .. version .. ':' .. ARGV[2])}
"""


# One atomic step per invalidation: move each namespace to a new version, record the LSN its
# refill must see, and announce the new versions to every subscribed process. A version is
# the server's clock in microseconds (or one more than the last, if that is later), so it
# never repeats: not after a restart (this Redis keeps nothing), a FLUSHDB, or the eviction
# of a namespace's hash (allkeys-lru), any of which would make a counter count the same
# versions again and let an old value, here or in a process's memory, pass for current.
_INVALIDATE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local announced = {}
for i, key in ipairs(KEYS) do
  local version = math.max(now, tonumber(redis.call('HGET', key, 'version') or '0') + 1)
  local text = string.format('%.0f', version)
  redis.call('HSET', key, 'version', text, 'lsn', ARGV[1])
  announced[#announced + 1] = ARGV[i + 2] .. ' ' .. text
end
local message = table.concat(announced, ' ')
redis.call('PUBLISH', ARGV[2], message)
return message
"""

# The fill lock of an entry a read found empty, taken only if the entry is still empty:
# {1, false} when taken, {0, value} when filled meanwhile, {0, false} when another holds it.
_LOCK_EMPTY = """
local raw = redis.call('GET', KEYS[1])
if raw then
  return {0, raw}
end
return {redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0, false}
"""


@dataclass(frozen=True)
class Found(Generic[T]):
    """A cached value and where it came from: ``shared`` (this Redis) or ``miss`` (computed).

    ``version`` is the namespace's version the value is stored under, and ``fresh_until`` its
    soft expiry (epoch seconds): a copy kept in a process's memory is exact while both hold.
    ``version`` is None when the cache was bypassed (unreachable).
    """

    value: T
    source: str
    version: int | None
    fresh_until: float


def channel_of(client: redis.Redis) -> str:
    """The invalidation channel of the cache database ``client`` uses."""
    return f"{CHANNEL}:{client.connection_pool.connection_kwargs.get('db', 0)}"


def article_namespace(article_id: int) -> str:
    return f"article:{article_id}"


def jittered(ttl: float) -> float:
    return ttl * random.uniform(1 - JITTER, 1 + JITTER)


def _key(namespace: str, version: int, name: str) -> str:
    return f"c:{namespace}:{version}:{name}"


class ReadCache:
    """Versioned, stampede-protected, WAL-gated cache entries in one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        breaker: Breaker,
        refill_at: Callable[[int], AbstractContextManager[Callable[[], bool]]],
    ) -> None:
        """``refill_at(lsn)`` wraps a refill: its reads must see WAL position ``lsn``; it yields
        ``saw_all()``, False after the reads if they could not (app.database.reading_at_least)."""
        self.client = client
        self.breaker = breaker
        self._refill_at = refill_at
        self._read_script = client.register_script(_READ)
        self._invalidate_script = client.register_script(_INVALIDATE)
        self._lock_empty_script = client.register_script(_LOCK_EMPTY)
        self.channel = channel_of(client)
        #: Told each announcement this process makes, before anyone else hears it: the process
        #: that wrote reads its own write even before its subscription delivers the message.
        self.announced: Callable[[bytes], None] | None = None

    def cached(self, namespace: str, name: str, ttl: float, compute: Callable[[], T]) -> T:
        """``compute()``'s JSON-serialisable value, from the cache when fresh."""
        return self.lookup(namespace, name, ttl, compute).value

    def lookup(self, namespace: str, name: str, ttl: float, compute: Callable[[], T]) -> Found[T]:
        """``compute()``'s JSON-serialisable value, from the cache when fresh, with its provenance."""
        if not self.breaker.closed:
            CACHE_REQUESTS.labels("miss").inc()
            return Found(compute(), "miss", None, 0.0)
        try:
            version, min_lsn, raw = self._read(namespace, name)
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            CACHE_REQUESTS.labels("miss").inc()
            return Found(compute(), "miss", None, 0.0)
        key = _key(namespace, version, name)

        locked = False
        if raw is None:
            locked, raw = self._lock_empty(key)
        if raw is not None:
            entry = json.loads(raw)
            if entry["fresh_until"] > time.time() or not self._try_lock(key):
                CACHE_REQUESTS.labels("hit").inc()
                return Found(entry["value"], "shared", version, entry["fresh_until"])
            # Soft-expired and we hold the refresh lock: recompute below, others keep serving this.
        elif not locked:
            filled = self._wait_for_fill(key)
            if filled is not None:
                CACHE_REQUESTS.labels("hit").inc()
                return Found(filled["value"], "shared", version, filled["fresh_until"])
        CACHE_REQUESTS.labels("miss").inc()
        try:
            with self._refill_at(min_lsn) as saw_all:
                value = compute()
        except BaseException:
            self._release(key)  # let the next reader try at once instead of waiting out the lock
            raise
        fresh_until = self._store(key, value, ttl if saw_all() else STALE_TTL)
        return Found(value, "miss", version if fresh_until else None, fresh_until)

    def invalidate(self, namespaces: tuple[str, ...], lsn: int) -> None:
        """Make every cached value of ``namespaces`` unreachable, everywhere; refills must see ``lsn``.

        One script bumps the versions and announces them on CHANNEL, so the processes that keep
        pages in memory drop theirs. The client resends it after a dropped connection
        (app.redis_clients): the ``HINCRBY`` is a version bump, not a count, so running it twice
        still yields a new version (and the same ``lsn``), while an invalidation lost to a blip
        would serve a stale page."""
        try:
            message = self._invalidate_script(
                keys=[f"ns:{namespace}" for namespace in namespaces], args=[str(lsn), self.channel, *namespaces]
            )
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            return
        if self.announced is not None:
            self.announced(message)

    def _read(self, namespace: str, name: str) -> tuple[int, int, bytes | None]:
        new_version = time.time_ns() // 1000  # only used if the namespace has no version yet
        version, lsn, raw = self._read_script(
            keys=[f"ns:{namespace}"], args=[f"c:{namespace}:", name, str(new_version)]
        )
        return int(version), int(lsn), raw

    def _release(self, key: str) -> None:
        try:
            self.client.delete(f"lock:{key}")
        except redis.RedisError as exc:
            self.breaker.trip(exc)

    def _lock_empty(self, key: str) -> tuple[bool, bytes | None]:
        """Take the fill lock of ``key``, found empty, unless it was filled since that read:
        (whether this request holds the lock, the entry if it is there now). Checked in the same
        step as the lock: a filler may have stored the entry and released its lock in between,
        and a plain SET NX would then render the page a second time (make bench's read/write run
        counted a third more misses than invalidations on the home page)."""
        try:
            locked, raw = self._lock_empty_script(keys=[key, f"lock:{key}"], args=[uuid.uuid4().hex, LOCK_MS])
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            return True, None
        return bool(locked), raw or None

    def _try_lock(self, key: str) -> bool:
        try:
            return bool(self.client.set(f"lock:{key}", uuid.uuid4().hex, nx=True, px=LOCK_MS))
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            return True

    def _wait_for_fill(self, key: str) -> dict[str, Any] | None:
        """The entry (``fresh_until``, ``value``) another request is filling, if it comes in time;
        None at once when the filler gives up (its lock is gone and nothing was stored)."""
        deadline = time.monotonic() + WAIT_FOR_FILL
        interval, growth, longest = FILL_POLL
        try:
            while time.monotonic() < deadline:
                time.sleep(interval)
                interval = min(interval * growth, longest)
                raw, lock = cast("list[bytes | None]", self.client.mget(key, f"lock:{key}"))  # a sync client
                if raw is not None:
                    entry: dict[str, Any] = json.loads(raw)
                    return entry
                if lock is None:
                    return None
        except redis.RedisError as exc:
            self.breaker.trip(exc)
        return None

    def _store(self, key: str, value: Any, ttl: float) -> float:
        """Store ``value`` under ``key``; its soft expiry, or 0.0 when it could not be stored."""
        if not self.breaker.closed:
            return 0.0
        soft = jittered(ttl)
        fresh_until = time.time() + soft
        entry = json.dumps({"fresh_until": fresh_until, "value": value}, separators=(",", ":"))
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(key, entry, px=int((soft + GRACE) * 1000))
            pipe.delete(f"lock:{key}")
            pipe.execute()
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            return 0.0
        return fresh_until


def init_cache(app: Flask) -> ReadCache:
    cache = ReadCache(app.extensions["cache_redis"], Breaker("cache", BREAKER_SECONDS), reading_at_least)
    app.extensions["cache"] = cache
    return cache


def current_cache() -> ReadCache:
    cache: ReadCache = current_app.extensions["cache"]
    return cache


def cached(namespace: str, name: str, ttl: float, compute: Callable[[], T]) -> T:
    return current_cache().cached(namespace, name, ttl, compute)


def invalidate(*namespaces: str) -> None:
    """After a commit (an after-commit hook): make every cached value of ``namespaces``
    unreachable, everywhere. The new version carries the primary's WAL position, which the
    refill must see."""
    if not namespaces:
        return
    # The commit just recorded the primary's position for read-your-writes: reuse it.
    lsn = committed_position()
    if lsn is None:
        try:
            with db.engine.connect() as conn:
                lsn = primary_lsn(conn)
        except Exception as exc:
            log.warning("no WAL position for cache invalidation (%s); refills read the primary", exc)
            lsn = UNKNOWN_LSN
    current_cache().invalidate(namespaces, lsn)


def invalidate_article(article_id: int, *, created: bool = False) -> None:
    """Everything that shows the article: its page, and the listings it is in. A new article
    is newer than every cursor, so it changes the numbered pages (LATEST) but no page after a
    cursor (ARCHIVE); an edit or a deletion may change any of them."""
    lists = (LATEST,) if created else (LATEST, ARCHIVE)
    invalidate(*lists, article_namespace(article_id))
