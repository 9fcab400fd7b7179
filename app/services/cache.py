"""The shared read cache (the `cache` Redis): article detail, list pages and popular.

Correctness after a write comes from versioned namespaces rather than key scans: every
cached value lives under ``c:<namespace>:<version>:<name>``. A write bumps the version of
what it changed (``lists`` for every listing, ``article:<id>`` for one article) and records
the primary's WAL position with it; the next reader anywhere misses, and refills the entry
only from a database that has replayed at least that position (the replica if it has caught
up, else the primary). So a lagging replica can never put the old value back.

Stampede protection: one request per key recomputes (a short NX lock); the others serve the
previous value while it is within its grace period, or wait briefly for the new one. TTLs
carry jitter so that entries filled together do not expire together.

If the cache is unreachable, reads go to the database (slower, never an error), and the
process stops trying the cache for a few seconds instead of paying a timeout per request.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from flask import current_app

from app.database.routing import committed_position, reading_at_least
from app.database.wal import primary_lsn
from app.extensions import db
from app.metrics import CACHE_REQUESTS

log = logging.getLogger(__name__)
T = TypeVar("T")

LISTS = "lists"
DETAIL_TTL = 60.0
LIST_TTL = 30.0
POPULAR_TTL = 10.0
#: How long past its soft expiry a value may still be served while one request refreshes it.
GRACE = 30.0
JITTER = 0.1
LOCK_MS = 5000
WAIT_FOR_FILL = 1.0
BREAKER_SECONDS = 5.0

_breaker_until = 0.0


def article_namespace(article_id: int) -> str:
    return f"article:{article_id}"


def _client() -> redis.Redis:
    return current_app.extensions["cache_redis"]


def _available() -> bool:
    return time.monotonic() >= _breaker_until


def _trip(exc: Exception) -> None:
    global _breaker_until
    if _available():
        log.warning("cache unavailable, reading from the database for %.0fs: %s", BREAKER_SECONDS, exc)
    _breaker_until = time.monotonic() + BREAKER_SECONDS


def jittered(ttl: float) -> float:
    return ttl * random.uniform(1 - JITTER, 1 + JITTER)


def cached(namespace: str, name: str, ttl: float, compute: Callable[[], T]) -> T:
    """``compute()``'s JSON-serialisable value, from the cache when fresh."""
    if not _available():
        CACHE_REQUESTS.labels("miss").inc()
        return compute()
    client = _client()
    try:
        version, min_lsn, raw = _read(client, namespace, name)
        key = _key(namespace, version, name)
    except redis.RedisError as exc:
        _trip(exc)
        CACHE_REQUESTS.labels("miss").inc()
        return compute()

    now = time.time()
    if raw is not None:
        entry = json.loads(raw)
        if entry["fresh_until"] > now or not _try_lock(client, key):
            CACHE_REQUESTS.labels("hit").inc()
            return entry["value"]
        # Soft-expired and we hold the refresh lock: recompute below, others keep serving this.
    elif not _try_lock(client, key):
        filled = _wait_for_fill(client, key)
        if filled is not None:
            CACHE_REQUESTS.labels("hit").inc()
            return filled
    CACHE_REQUESTS.labels("miss").inc()
    try:
        with reading_at_least(min_lsn):
            value = compute()
    except BaseException:
        _release(client, key)  # let the next reader try at once instead of waiting out the lock
        raise
    _store(client, key, value, ttl)
    return value


def _release(client: redis.Redis, key: str) -> None:
    try:
        client.delete(f"lock:{key}")
    except redis.RedisError as exc:
        _trip(exc)


# One round trip for a lookup: the namespace's version and invalidation LSN, and the value
# stored under that version. (Each round trip costs the replica CPU in the network stack.)
_READ = """
local state = redis.call('HMGET', KEYS[1], 'version', 'lsn')
local version = state[1] or '0'
return {version, state[2] or '0', redis.call('GET', ARGV[1] .. version .. ':' .. ARGV[2])}
"""
_scripts: dict[int, Any] = {}


def _key(namespace: str, version: int, name: str) -> str:
    return f"c:{namespace}:{version}:{name}"


def _read(client: redis.Redis, namespace: str, name: str) -> tuple[int, int, bytes | None]:
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_READ)
    version, lsn, raw = script(keys=[f"ns:{namespace}"], args=[f"c:{namespace}:", name])
    return int(version), int(lsn), raw


def _try_lock(client: redis.Redis, key: str) -> bool:
    try:
        return bool(client.set(f"lock:{key}", uuid.uuid4().hex, nx=True, px=LOCK_MS))
    except redis.RedisError as exc:
        _trip(exc)
        return True


def _wait_for_fill(client: redis.Redis, key: str) -> Any | None:
    deadline = time.monotonic() + WAIT_FOR_FILL
    try:
        while time.monotonic() < deadline:
            time.sleep(0.02)
            raw = client.get(key)
            if raw is not None:
                return json.loads(raw)["value"]
    except redis.RedisError as exc:
        _trip(exc)
    return None


def _store(client: redis.Redis, key: str, value: Any, ttl: float) -> None:
    if not _available():
        return
    soft = jittered(ttl)
    entry = json.dumps({"fresh_until": time.time() + soft, "value": value}, separators=(",", ":"))
    try:
        pipe = client.pipeline(transaction=False)
        pipe.set(key, entry, px=int((soft + GRACE) * 1000))
        pipe.delete(f"lock:{key}")
        pipe.execute()
    except redis.RedisError as exc:
        _trip(exc)


def invalidate(*namespaces: str) -> None:
    """After a commit: make every cached value of ``namespaces`` unreachable, everywhere.

    The new version carries the primary's current WAL position, which the refill must see.
    """
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
            lsn = 2**63 - 1
    try:
        pipe = _client().pipeline(transaction=True)
        for namespace in namespaces:
            pipe.hincrby(f"ns:{namespace}", "version", 1)
            pipe.hset(f"ns:{namespace}", "lsn", lsn)
        pipe.execute()
    except redis.RedisError as exc:
        _trip(exc)


def invalidate_lists() -> None:
    invalidate(LISTS)


def invalidate_article(article_id: int) -> None:
    invalidate(LISTS, article_namespace(article_id))
