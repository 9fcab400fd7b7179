"""The in-process layer of the response cache: when a copy may be served, and the hit path."""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.models.base import BIGINT_MAX
from app.response_cache import PONG, Entry, LocalPages, ServeFromMemory, etag_of, matches, memory_key
from app.services.queries import CURSOR_PATTERN, MAX_CURSOR_LENGTH, Cursor


@pytest.fixture
def subscription() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair standing for the subscription's socket (ours) and the server's end."""
    ours, server = socket.socketpair()
    yield ours, server
    ours.close()
    server.close()


def entry(namespace: str = "latest", version: int = 5, body: bytes = b"<p>page</p>", **kw: Any) -> Entry:
    fields: dict[str, Any] = {
        "fresh_until": time.time() + 30,
        "status": "200 OK",
        "headers": [("Content-Type", "text/html; charset=utf-8"), ("ETag", etag_of(body))],
        "etag": etag_of(body),
        "view_of": None,
    }
    fields.update(kw)
    return Entry(namespace=namespace, version=version, body=body, **fields)


def live_pages(sock: socket.socket, max_bytes: int = 1 << 20) -> LocalPages:
    pages = LocalPages(max_bytes)
    pages.go_live(sock)
    return pages


def test_a_copy_is_served_while_its_version_is_current(subscription: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = subscription
    pages = live_pages(ours)
    assert pages.put("/", entry(version=5), pages.generation)
    assert pages.get("/") is not None
    pages.announce(b"latest 6 article:1 9")
    assert pages.get("/") is None, "an announced invalidation makes the copy unreachable"
    assert not pages.put("/", entry(version=5), pages.generation), "a lookup that saw the old version stores nothing"
    assert pages.put("/", entry(version=6), pages.generation)
    assert pages.get("/") is not None


def test_nothing_is_trusted_while_an_announcement_waits_unread(
    subscription: tuple[socket.socket, socket.socket],
) -> None:
    ours, server = subscription
    pages = live_pages(ours)
    pages.put("/", entry(), pages.generation)
    server.sendall(b"*3\r\n$7\r\nmessage\r\n")  # the subscription has not read it yet
    assert pages.get("/") is None
    ours.recv(100)
    assert pages.get("/") is not None
    # Replies to the subscription's pings are no announcement; anything after them is.
    server.sendall(PONG * 2)
    assert pages.get("/") is not None
    assert ours.recv(100) == PONG * 2, "the peek left them for the subscription to read"
    server.sendall(PONG + b"*3\r\n$7\r\nmessage\r\n")
    assert pages.get("/") is None
    ours.recv(100)
    server.sendall(PONG[:5])  # a PONG still arriving
    assert pages.get("/") is None


def test_a_dropped_or_silent_subscription_throws_everything_away(
    subscription: tuple[socket.socket, socket.socket],
) -> None:
    ours, server = subscription
    pages = live_pages(ours)
    generation = pages.generation
    pages.put("/", entry(), generation)
    pages.heard_at -= 10
    assert pages.get("/") is None, "not heard from for longer than SILENCE"
    pages.heard(time.time())
    server.close()
    assert pages.get("/") is None, "the end of the connection is readable: not trusted"
    pages.reset(live=False)
    assert pages.entries == {} and pages.versions == {}
    assert not pages.put("/", entry(), generation), "a lookup from before the reset stores nothing"
    pages.go_live(ours)
    assert pages.put("/", entry(version=1), pages.generation), "after resubscribing, versions are learnt again"


def test_expired_copies_are_not_served_and_memory_is_bounded(
    subscription: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = subscription
    pages = live_pages(ours, max_bytes=1000)
    pages.put("/old", entry(fresh_until=time.time() - 1, body=b"x" * 100), pages.generation)
    assert pages.get("/old") is None
    for n in range(20):
        pages.put(f"/{n}", entry(body=b"y" * 100), pages.generation)
    assert pages.size <= 1000 and len(pages.entries) == 10
    assert "/19" in pages.entries and "/0" not in pages.entries, "the oldest copies go first"


def test_if_none_match_comparison() -> None:
    tag = etag_of(b"body")
    assert matches(tag, tag) and matches(f'"other", W/{tag}', tag) and matches("*", tag)
    assert not matches('"other"', tag)


def test_cursors_round_trip_and_refuse_what_we_did_not_make() -> None:
    cursor = Cursor.decode(Cursor(published_at=datetime.now(UTC), id=42).encode())
    assert cursor is not None and cursor.id == 42
    assert Cursor.decode(cursor.encode()) == cursor
    assert re.fullmatch(CURSOR_PATTERN, cursor.encode()), "what the API documents"
    for bad in ("", "x" * 65, "not base64!", "bm9wZQ", "MTIzLjA", "MTIzLjk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", "1_2\n", "1_"):
        assert Cursor.decode(bad) is None, bad


def test_every_cursor_the_document_allows_is_a_position() -> None:
    """The pattern is the promise: any string of it is accepted, its parts clamped to real positions."""
    for text in ("0_0", "-999999999999999999_9999999999999999999", "999999999999999999_1", "007_1"):
        assert re.fullmatch(CURSOR_PATTERN, text) and len(text) <= MAX_CURSOR_LENGTH
        cursor = Cursor.decode(text)
        assert cursor is not None, text
        assert 0 <= cursor.id <= BIGINT_MAX
        assert Cursor.decode(cursor.encode()) == cursor, "a clamped cursor encodes to itself"
    assert Cursor.decode("007_1") == Cursor.decode("7_1"), "one position, one cache key"


def test_cursors_of_earlier_releases_are_still_read() -> None:
    """Links to older pages that replicas of the previous image handed out (base64 of micros.id)."""
    legacy = base64.urlsafe_b64encode(b"1700000000000000.42").decode().rstrip("=")
    cursor = Cursor.decode(legacy)
    assert cursor == Cursor(published_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), id=42)


class FakeFlask:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        start_response("200 OK", [("X-Cache", "miss")])
        return [b"from flask"]


class Timing:
    """Stands for a histogram child: records what it is told to observe."""

    def __init__(self, log: list[tuple[str, str, float]], method: str, status: str) -> None:
        self.log, self.method, self.status = log, method, status

    def observe(self, seconds: float) -> None:
        self.log.append((self.method, self.status, seconds))


class FakeCache:
    def __init__(self, pages: LocalPages) -> None:
        self.pages = pages
        self.hostname = "web-1"
        self.session_cookie = "session="
        self.security_headers = [("X-Content-Type-Options", "nosniff")]
        self.views: list[int] = []
        self.local_hits = type("C", (), {"inc": lambda self: None})()
        #: (method, status, seconds) of every answer the middleware timed.
        self.observed: list[tuple[str, str, float]] = []

    def count_view(self, article_id: int) -> None:
        self.views.append(article_id)

    def timing(self, method: str, status: str) -> Timing:
        return Timing(self.observed, method, status)


def call(app: ServeFromMemory, path: str, **environ: str) -> tuple[str, dict[str, str], bytes]:
    path_info, _, query = path.partition("?")
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "QUERY_STRING": query, **environ}
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return seen["status"], seen["headers"], body


def test_the_hit_path(subscription: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = subscription
    pages = live_pages(ours)
    flask = FakeFlask()
    cache = FakeCache(pages)
    app = ServeFromMemory(flask, cache)  # type: ignore[arg-type]
    page = entry(view_of=7)
    assert memory_key({"PATH_INFO": "/articles/7", "QUERY_STRING": ""}) == "/articles/7"
    pages.put("/articles/7", page, pages.generation)

    status, headers, body = call(app, "/articles/7", HTTP_X_REQUEST_ID="abc")
    assert (status, body, flask.calls) == ("200 OK", b"<p>page</p>", 0)
    assert headers["X-Cache"] == "hit" and headers["X-Served-By"] == "web-1" and headers["X-Request-ID"] == "abc"
    assert cache.views == [7], "a GET of an article page counts a view"

    status, headers, body = call(app, "/articles/7", HTTP_IF_NONE_MATCH=page.etag)
    assert status == "304 Not Modified" and body == b"" and "Content-Type" not in headers
    assert call(app, "/articles/7", REQUEST_METHOD="HEAD")[2] == b""
    assert cache.views == [7, 7], "a HEAD is not a view"
    assert [(m, s) for m, s, _ in cache.observed] == [("GET", "200"), ("GET", "304"), ("HEAD", "200")]
    assert all(0 <= seconds < 1 for _, _, seconds in cache.observed), "answers from memory are timed"

    for bypass in ({"HTTP_COOKIE": "a=1; session=xyz"}, {"HTTP_AUTHORIZATION": "Bearer k"}, {"REQUEST_METHOD": "POST"}):
        assert call(app, "/articles/7", **bypass)[2] == b"from flask", bypass
    assert call(app, "/articles/7?x=1")[2] == b"from flask", "another query string is another page"
    assert call(app, "/articles/7", HTTP_COOKIE="theme=dark")[2] == b"<p>page</p>", "other cookies do not matter"
