"""app.http_response: the same bytes as gunicorn's own response, in fewer sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from app import http_response
from app.http_response import COALESCE_MAX, CoalescingResponse


class Recorder:
    """A socket that keeps what each send was given."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def request(method: str = "GET") -> object:
    raw = f"{method} /articles/1 HTTP/1.1\r\nHost: nginx\r\nConnection: keep-alive\r\n\r\n".encode()
    return next(RequestParser(Config(), iter([raw]), ("127.0.0.1", 1234)))


def respond(response_class: type, method: str, headers: list[tuple[str, str]], chunks: list[bytes]) -> Recorder:
    sock = Recorder()
    response = response_class(request(method), sock, Config())
    response.start_response("200 OK", headers)
    for chunk in chunks:
        response.write(chunk)
    response.close()
    return sock


def without_date(sends: list[bytes]) -> bytes:
    return b"".join(line for line in b"".join(sends).splitlines(keepends=True) if not line.startswith(b"Date: "))


BODY = b'{"items": []}'
CASES = {
    "one chunk": ("GET", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))], [BODY]),
    "HEAD": ("HEAD", [("Content-Length", str(len(BODY)))], [BODY]),
    "chunked": ("GET", [("Content-Type", "text/plain")], [b"one", b"two"]),
    "no body chunk": ("GET", [("Content-Length", "0")], []),
    "empty chunk": ("GET", [("Content-Length", "0")], [b""]),
    "past Content-Length": ("GET", [("Content-Length", "3")], [b"abcdef", b"gh"]),
    "large": ("GET", [("Content-Length", str(COALESCE_MAX + 1))], [b"x" * (COALESCE_MAX + 1)]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_bytes_are_gunicorns(case: str) -> None:
    method, headers, chunks = CASES[case]
    ours = respond(CoalescingResponse, method, headers, chunks)
    theirs = respond(wsgi.Response, method, headers, chunks)
    assert without_date(ours.sends) == without_date(theirs.sends)
    assert len(ours.sends) <= len(theirs.sends)


def test_a_one_chunk_body_leaves_with_the_head() -> None:
    method, headers, chunks = CASES["one chunk"]
    sends = respond(CoalescingResponse, method, headers, chunks).sends
    assert len(sends) == 1
    assert sends[0].startswith(b"HTTP/1.1 200 OK\r\n") and sends[0].endswith(b"\r\n\r\n" + BODY)


def test_a_large_body_goes_after_the_head_by_itself() -> None:
    method, headers, chunks = CASES["large"]
    sends = respond(CoalescingResponse, method, headers, chunks).sends
    assert [len(s) for s in sends[1:]] == [COALESCE_MAX + 1]
    assert sends[0].endswith(b"\r\n\r\n")


def test_a_body_that_is_not_bytes_still_gets_the_head_out() -> None:
    sock = Recorder()
    response = CoalescingResponse(request(), sock, Config())
    response.start_response("200 OK", [("Content-Length", "2")])
    with pytest.raises(TypeError):
        response.write("no")
    assert len(sock.sends) == 1 and sock.sends[0].endswith(b"\r\n\r\n")


@pytest.fixture
def restore_response() -> Iterator[None]:
    original = wsgi.Response
    yield
    wsgi.Response = original


@pytest.mark.usefixtures("restore_response")
def test_install_makes_gunicorn_build_it() -> None:
    http_response.install()
    response, _ = wsgi.create(request(), Recorder(), ("127.0.0.1", 1234), ("0.0.0.0", 8000), Config())
    assert isinstance(response, CoalescingResponse)
