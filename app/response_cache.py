"""Anonymous pages and API reads cached as whole responses, and answered from memory.

Three layers, each exact:

1. **The shared cache** (app.services.cache, the `cache` Redis) holds each rendered response
   (status, headers, body) under its namespace's current version, WAL-gated and stampede-
   protected as before. Any replica that misses fills it once for everyone.
2. **Each process's memory** (``LocalPages``) keeps a copy of what it served, keyed by the
   request's path and query string, with the namespace version it belongs to. A value stored
   under a version never changes, so the copy is exact for as long as that version is the
   current one: every invalidation is announced on the cache's pub/sub channel, and a
   ``Subscription`` in each process applies the announcements. A copy is served only while
   the subscription is known to be live (heard from within ``SILENCE`` seconds: it pings) and
   has nothing unread (a waiting announcement, or the end of a dropped connection, makes the
   socket readable); a dropped subscription, or a `cache` Redis that restarted (it keeps
   nothing, so versions start again), empties the process's memory before it serves again.
   A copy also expires with the shared entry's soft TTL, so views counts and popular pages
   age exactly as before.
3. **The hit path** (``ServeFromMemory``) is WSGI middleware in front of Flask: a GET or HEAD
   without a session cookie or credentials whose path is in memory is answered there,
   without a request context, routing, hooks, templates or a round trip: what is left is
   what gunicorn itself costs. Everything else goes to Flask, where the views call
   ``cached_response``.

Responses carry ``X-Cache``: ``hit`` (this process's memory), ``shared`` (the shared cache)
or ``miss`` (rendered for this request), an ``ETag`` (a conditional GET is answered 304),
``Cache-Control: no-cache`` and ``Vary: Cookie, Authorization``. ``X-Served-By`` is always
the replica that answered; the page's footer names the one that rendered it. The security
headers (app.security_headers) are not stored: every answer gets the app's current ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, Response, current_app, g, request, session
from flask.typing import ResponseReturnValue
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.metrics import CACHE_REQUESTS, REQUEST_LATENCY
from app.services.accounts import KEY_CHECK_MAX_LAG_SECONDS
from app.services.cache import KEYS, channel_of, current_cache

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

try:  # under gevent, a real select(): the check must never yield to another greenlet
    from gevent.monkey import get_original

    _select = get_original("select", "select")
except ImportError:  # pragma: no cover - gevent is in the image
    from select import select as _select

log = logging.getLogger(__name__)

CACHE_HEADER = "X-Cache"
HIT, SHARED, MISS = "hit", "shared", "miss"
#: How often the subscription pings, and how long without a word before its process stops
#: trusting its memory.
PING_EVERY = 1.0
SILENCE = 3.0
#: The reply to the subscription's PING, as it arrives (RESP2, subscribed mode): while nothing
#: but these waits unread, no announcement does (Redis answers in order).
PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
_PEEK_BYTES = 16 * len(PONG)
#: The headers of a rendered response that are stored with it (the rest is per request).
KEPT_HEADERS = frozenset({"content-type", "content-language", "link"})
CACHE_CONTROL = "no-cache"
#: API keys kept in memory (app.api.inputs): for how long, and not within how long of a revocation
#: (the replica a key is checked on is at most that far behind: app.services.accounts).
KEY_TTL = 60.0
KEY_QUIET = KEY_CHECK_MAX_LAG_SECONDS
VARY = "Cookie, Authorization"
_MAX_REQUEST_ID = 128


class Uncacheable(Exception):
    """The render produced something that must not be shared (not a 200, or it set a cookie)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True, slots=True)
class Entry:
    """One response in a process's memory, ready to send."""

    namespace: str
    version: int
    fresh_until: float
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    etag: str
    #: The article whose view a GET of this response counts (article pages and API reads).
    view_of: int | None


def memory_key(environ: WSGIEnvironment) -> str:
    """What a response is kept under in memory: the path and the query string as sent."""
    query = environ.get("QUERY_STRING")
    path: str = environ.get("PATH_INFO", "")
    return f"{path}?{query}" if query else path


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match list against our (strong) tag."""
    if if_none_match.strip() == "*":
        return True
    return any(candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(","))


class LocalPages:
    """This process's copies of shared-cache responses, exact while their version is current.

    Written by request handlers (``put``) and the subscription (``announce``, ``go_live``,
    ``reset``); read by ``get`` on every hit. ``generation`` changes whenever what the process
    knows about versions is thrown away, so a lookup that started before cannot store after.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.keys: dict[str, tuple[float, Any]] = {}
        #: Counts revocations heard (and resets); when the last one was.
        self.keys_epoch = 0
        self.keys_changed_at = 0.0
        self.entries: dict[str, Entry] = {}
        self.versions: dict[str, int] = {}
        self.size = 0
        self.generation = 0
        self.live = False
        self.heard_at = 0.0
        self.sock: Any = None  # the subscription's socket (anything with fileno())

    # -- the subscription's side --

    def go_live(self, sock: Any) -> None:
        """Subscribed (again): versions are pushed from now on; what was known before is dropped."""
        self.reset(live=False)
        self.sock = sock
        self.heard_at = time.time()
        self.live = True

    def reset(self, *, live: bool) -> None:
        self.live = live
        self.generation += 1
        self.entries = {}
        self.versions = {}
        self.size = 0
        self._forget_keys()
        if not live:
            self.sock = None

    def _forget_keys(self) -> None:
        self.keys = {}
        self.keys_epoch += 1
        self.keys_changed_at = time.time()

    def heard(self, now: float) -> None:
        self.heard_at = now

    def announce(self, message: bytes | str) -> None:
        """Apply ``"<namespace> <version> ..."`` from CHANNEL."""
        text = message.decode() if isinstance(message, bytes) else message
        parts = text.split()
        if KEYS in parts[::2]:
            self._forget_keys()
        for namespace, version_text in zip(parts[::2], parts[1::2], strict=False):
            version = int(version_text)
            if version > self.versions.get(namespace, -1):
                self.versions[namespace] = version

    # -- the requests' side --

    def trusted(self, now: float) -> bool:
        """The subscription is live, heard from lately, and has nothing unread but PONGs.

        A PONG waits unread after each ping until the subscription's greenlet gets its turn,
        which on a saturated process takes milliseconds: counting it as unread sent ~3% of the
        hits of a saturated replica to the shared cache (make bench). So what is readable is
        peeked at (it stays for the subscription to read): PONGs alone are no announcement."""
        if not self.live or now - self.heard_at > SILENCE:
            return False
        try:
            readable, _, _ = _select([self.sock], [], [], 0)
            if not readable:
                return True
            # Readable, so this returns at once (gevent's recv waits only on EWOULDBLOCK).
            pending: bytes = self.sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
        except (OSError, ValueError, TypeError):  # closed under us
            return False
        # Empty: the end of the connection. A partial PONG, or anything else, is not trusted.
        return bool(pending) and pending == PONG * (len(pending) // len(PONG))

    def get(self, key: str) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = time.time()
        if entry.fresh_until <= now or self.versions.get(entry.namespace) != entry.version:
            return None
        return entry if self.trusted(now) else None

    def known_key(self, key_hash: str) -> Any | None:
        """The API key kept for ``key_hash``, while no revocation can have been missed."""
        kept = self.keys.get(key_hash)
        if kept is None:
            return None
        now = time.time()
        return kept[1] if kept[0] > now and self.trusted(now) else None

    def keep_key(self, key_hash: str, key: Any, epoch: int) -> None:
        """Keep ``key`` (read when ``keys_epoch`` was ``epoch``) for KEY_TTL seconds.

        Not while a revocation may still be missing from the replica the key was read on: for
        KEY_QUIET seconds after one is announced (or the subscription starts), keys are read
        every time, as without this memory. So a revoked key stops within that bound still."""
        now = time.time()
        if epoch != self.keys_epoch or not self.live or now - self.keys_changed_at < KEY_QUIET:
            return
        self.keys[key_hash] = (now + KEY_TTL, key)

    def put(self, key: str, entry: Entry, generation: int) -> bool:
        """Keep ``entry`` if nothing was thrown away since ``generation`` and its version is current."""
        if generation != self.generation or not self.live or len(entry.body) > self.max_bytes // 8:
            return False
        known = self.versions.get(entry.namespace, -1)
        if entry.version < known:
            return False  # invalidated while it was being looked up
        self.versions[entry.namespace] = entry.version
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        while self.entries and self.size + len(entry.body) > self.max_bytes:
            oldest = next(iter(self.entries))  # insertion order: the oldest copy goes first
            self.size -= len(self.entries.pop(oldest).body)
        self.entries[key] = entry
        self.size += len(entry.body)
        return True


class Subscription:
    """This process's subscription to the cache's invalidation channel, in a background thread
    (a greenlet under gevent), started on first use in each process (never before a fork)."""

    def __init__(self, url: str, pages: LocalPages) -> None:
        self.url = url
        self.pages = pages
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.pages.reset(live=False)  # a forked copy of the parent's memory is not ours
            threading.Thread(target=self.run, name="cache-subscription", daemon=True).start()

    def run(self) -> None:
        backoff = 0.2
        while True:
            client = redis.Redis.from_url(
                self.url, socket_connect_timeout=1.0, socket_timeout=2 * SILENCE, retry=Retry(NoBackoff(), 0)
            )
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(channel_of(client))
                self.listen(pubsub)
            except Exception as exc:
                if self.pages.live:
                    log.warning("cache subscription lost (%s): pages in memory dropped until it is back", exc)
                self.pages.reset(live=False)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                pubsub.close()
                client.close()

    def listen(self, pubsub: redis.client.PubSub) -> None:
        heard = time.time()
        next_ping = heard + PING_EVERY
        while True:
            message = pubsub.get_message(timeout=PING_EVERY)
            now = time.time()
            if message is not None:
                kind = message["type"]
                if kind == "subscribe":
                    connection = pubsub.connection
                    assert connection is not None, "subscribed, so connected"
                    self.pages.go_live(connection._sock)
                    log.info("cache subscription live: pages are kept in memory")
                elif kind == "message":
                    self.pages.announce(message["data"])
                heard = now
                self.pages.heard(now)
            if now >= next_ping:
                pubsub.ping()
                next_ping = now + PING_EVERY
            if now - heard > SILENCE:
                raise TimeoutError(f"no word from the cache in {SILENCE:g} s")


#: The endpoint label of requests answered from a process's memory (ServeFromMemory).
MEMORY_ENDPOINT = "memory"


class ResponseCache:
    """One app's memory, subscription and view counter (``app.extensions["response_cache"]``)."""

    def __init__(self, app: Flask, max_bytes: int, count_view: Callable[[int], None]) -> None:
        settings = app.extensions["settings"]
        #: PAGE_CACHE=false (development): every response is rendered for its request.
        self.enabled: bool = settings.page_cache
        self.hostname: str = settings.hostname
        self.session_cookie = f"{app.config.get('SESSION_COOKIE_NAME', 'session')}="
        self.pages = LocalPages(max_bytes)
        self.subscription = Subscription(settings.cache_url, self.pages)
        self.count_view = count_view
        self.local_hits = CACHE_REQUESTS.labels("local")
        #: What every response carries (app.security_headers), added to the answers from memory.
        self.security_headers: list[tuple[str, str]] = list(app.extensions["security_headers"].default)
        self._timings: dict[tuple[str, str], Any] = {}

    def timing(self, method: str, status: str) -> Any:
        """The request histogram's child for an answer from memory (endpoint "memory"): they are
        requests too, so request rates and latency quantiles cover all a replica answers. Made
        on first use, so processes that never serve from memory (workers) export none."""
        child = self._timings.get((method, status))
        if child is None:
            child = self._timings[method, status] = REQUEST_LATENCY.labels(MEMORY_ENDPOINT, method, status)
        return child


class ServeFromMemory:
    """WSGI middleware: answer an anonymous GET or HEAD from this process's memory, else pass it on."""

    def __init__(self, app: WSGIApplication, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache
        self.pages = cache.pages

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        if (
            (method == "GET" or method == "HEAD")
            and "HTTP_AUTHORIZATION" not in environ
            and self.cache.session_cookie not in environ.get("HTTP_COOKIE", "")
        ):
            entry = self.pages.get(memory_key(environ))
            if entry is not None:
                return self.serve(entry, environ, start_response, method, started)
        return self.app(environ, start_response)

    def serve(
        self, entry: Entry, environ: WSGIEnvironment, start_response: StartResponse, method: str, started: float
    ) -> Iterable[bytes]:
        rid = environ.get("HTTP_X_REQUEST_ID", "")
        if not (0 < len(rid) <= _MAX_REQUEST_ID and rid.isprintable()):
            rid = uuid.uuid4().hex
        extra = [
            ("X-Served-By", self.cache.hostname),
            (CACHE_HEADER, HIT),
            ("X-Request-ID", rid),
            *self.cache.security_headers,
        ]
        self.cache.local_hits.inc()
        if entry.view_of is not None and method == "GET":
            self.cache.count_view(entry.view_of)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match and matches(if_none_match, entry.etag):
            headers = [(k, v) for k, v in entry.headers if k not in ("Content-Type", "Content-Length")]
            start_response("304 Not Modified", headers + extra)
            self.cache.timing(method, "304").observe(time.perf_counter() - started)
            return []
        start_response(entry.status, entry.headers + extra)
        self.cache.timing(method, "200").observe(time.perf_counter() - started)
        return [] if method == "HEAD" else [entry.body]


def local_pages() -> LocalPages:
    """This process's memory (also where API keys are kept: app.api.inputs)."""
    cache: ResponseCache = current_app.extensions["response_cache"]
    return cache.pages


def shares_cache() -> bool:
    """This request may be answered with what everyone anonymous gets: no user, no API key,
    and no flashed message waiting in its session."""
    return g.get("user") is None and "_flashes" not in session


def freeze(rv: ResponseReturnValue) -> dict[str, Any]:
    """A rendered response as a JSON-serialisable value (Uncacheable if it must not be shared)."""
    response = current_app.make_response(rv)
    if response.status_code != 200 or "Set-Cookie" in response.headers:
        raise Uncacheable(response)
    body = response.get_data()
    headers = [[k, v] for k, v in response.headers.items() if k.lower() in KEPT_HEADERS]
    headers += [["ETag", etag_of(body)], ["Cache-Control", CACHE_CONTROL], ["Vary", VARY]]
    return {"status": response.status, "headers": headers, "body": body.decode("utf-8")}


def cached_response(
    namespace: str,
    name: str,
    ttl: float,
    render: Callable[[], ResponseReturnValue],
    *,
    view_of: int | None = None,
) -> Response:
    """The response ``render()`` makes, through the shared cache (``namespace``/``name``, fresh
    for ``ttl`` s) and kept in this process's memory for the next identical request. A GET of
    it counts a view of article ``view_of``."""
    cache: ResponseCache = current_app.extensions["response_cache"]
    if not cache.enabled:
        return render_uncached(cache, render, view_of)
    if cache.pages.max_bytes:
        cache.subscription.ensure_started()
    generation = cache.pages.generation
    try:
        found = current_cache().lookup(namespace, name, ttl, lambda: freeze(render()))
    except Uncacheable as refused:
        refused.response.headers[CACHE_HEADER] = MISS
        return refused.response
    frozen = found.value
    body = frozen["body"].encode("utf-8")
    headers = [(k, v) for k, v in frozen["headers"]]
    etag = next(v for k, v in headers if k == "ETag")
    if found.version is not None and found.fresh_until > time.time():
        entry = Entry(
            namespace,
            found.version,
            found.fresh_until,
            frozen["status"],
            [*headers, ("Content-Length", str(len(body)))],
            body,
            etag,
            view_of,
        )
        cache.pages.put(memory_key(request.environ), entry, generation)
    response = Response(body, status=frozen["status"], headers=headers)
    response.headers[CACHE_HEADER] = found.source
    if request.method == "GET" and view_of is not None:
        cache.count_view(view_of)
    response.make_conditional(request)  # a 304 when If-None-Match names this ETag
    return response


def render_uncached(cache: ResponseCache, render: Callable[[], ResponseReturnValue], view_of: int | None) -> Response:
    """What ``cached_response`` answers with the page cache off: ``render()``'s response, with
    a view counted as a cached answer counts it (a GET answered 200)."""
    response = current_app.make_response(render())
    response.headers[CACHE_HEADER] = MISS
    if request.method == "GET" and view_of is not None and response.status_code == 200:
        cache.count_view(view_of)
    return response


def init_response_cache(app: Flask, count_view: Callable[[int], None]) -> ResponseCache:
    settings = app.extensions["settings"]
    memory_mb = settings.response_cache_mb if settings.page_cache else 0
    cache = ResponseCache(app, memory_mb * 1024 * 1024, count_view)
    app.extensions["response_cache"] = cache
    app.extensions["cache"].announced = cache.pages.announce
    if cache.pages.max_bytes:  # RESPONSE_CACHE_MB=0: the shared cache only
        app.wsgi_app = ServeFromMemory(app.wsgi_app, cache)  # type: ignore[method-assign]
    return cache
