"""Gunicorn's HTTP/1 response, but the head leaves with the first body bytes, in one send().

Gunicorn writes a response's head (status line and headers) with one ``sendall`` and each
body chunk with another. Behind nginx, in a container, every send costs the sender the
whole trip through the kernel: TCP, the veth pair, the bridge, netfilter, and waking nginx,
all charged to the replica's CPU share. A cached page or an API listing is one chunk, so
the head's separate send doubled that cost for nothing (aiohttp, Starman and Bun coalesce
the two for the same reason). This class holds the head that ``write`` would send first
and sends it with the body.

Only ``write`` (what a WSGI body of byte strings goes through) coalesces. ``close`` (a
response without a body chunk), ``sendfile`` (a file goes to the socket by itself) and
chunked responses send the head as gunicorn does. Whatever ``write`` does not pass on as
body (a HEAD, a 304, bytes past Content-Length) still gets the head out before it returns.
Installed in each worker by gunicorn_config.py's ``post_worker_init``; gunicorn's HTTP/2
path passes its own response class and is unaffected.
"""

from __future__ import annotations

from typing import Any

from gunicorn import util
from gunicorn.http import wsgi

#: Up to this size the head and the body are joined into one buffer (one copy of the body);
#: a larger body goes in its own send, after the head, as gunicorn sends it.
COALESCE_MAX = 256 * 1024


class CoalescingResponse(wsgi.Response):
    headers_sent: bool
    _holding = False
    _head = b""

    def send_headers(self) -> None:
        if not self._holding or self.headers_sent:
            super().send_headers()
            return
        # gunicorn's own head, built as its send_headers builds it, kept instead of sent.
        lines = self.default_headers()
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        self._head = util.to_bytestring("{}\r\n".format("".join(lines)), "latin-1")
        self.headers_sent = True

    def write(self, arg: Any) -> None:
        if self.headers_sent:
            super().write(arg)
            return
        self._holding = True
        try:
            super().write(arg)
        finally:
            self._holding = False
            self._send_head()

    def _emit_body(self, data: bytes) -> None:
        if self._head and not self.chunked and len(data) <= COALESCE_MAX:
            head, self._head = self._head, b""
            self.sock.sendall(head + data)
            return
        self._send_head()
        super()._emit_body(data)

    def _send_head(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self.sock.sendall(head)


def install() -> None:
    """Make ``CoalescingResponse`` the response gunicorn builds for HTTP/1 requests in this process."""
    wsgi.Response = CoalescingResponse
