"""The bare-gunicorn baseline of `make bench`: the smallest WSGI app that answers JSON.

Served by one gevent worker with a web replica's CPU share (the `bench-hello` compose
service), it measures what gunicorn + gevent alone can do per CPU share, so that the
replicas' figures can be read as a fraction of that physical limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"hello":"world"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
