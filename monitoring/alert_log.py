"""The default alert receiver: Alertmanager's webhook notifications, one JSON log line per alert.

Run by the monitoring profile's `alert-log` service (`docker compose logs alert-log` shows
what would have paged someone). Standard library only: it runs from the app image, mounted
from monitoring/, with nothing to install.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORT = 9095
MAX_BODY = 1024 * 1024


def lines_of(notification: dict[str, Any]) -> list[str]:
    """One log line per alert of an Alertmanager webhook notification (version 4)."""
    return [
        json.dumps(
            {
                "event": "alert",
                "status": alert.get("status"),
                "alertname": alert.get("labels", {}).get("alertname"),
                "severity": alert.get("labels", {}).get("severity"),
                "labels": alert.get("labels", {}),
                "summary": alert.get("annotations", {}).get("summary"),
                "startsAt": alert.get("startsAt"),
                "endsAt": alert.get("endsAt"),
                "receiver": notification.get("receiver"),
            },
            sort_keys=True,
        )
        for alert in notification.get("alerts", [])
    ]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self.send_error(400, "a JSON body of at most 1 MiB")
            return
        try:
            notification = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_error(400, "not JSON")
            return
        for line in lines_of(notification):
            print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)  # the healthcheck
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per alert (above), not one per HTTP request


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Receiver)
    print(json.dumps({"event": "listening", "port": PORT}), file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
