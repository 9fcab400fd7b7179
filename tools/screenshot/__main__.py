"""python -m tools.screenshot: see the package's docstring."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _as_fds_3_and_4(read_end: int, write_end: int) -> None:
    """In the child before exec: the command pipe's read end as fd 3, the answer pipe's write
    end as fd 4 (through high numbers first, so neither overwrites the other)."""
    high_read, high_write = os.dup2(read_end, 100), os.dup2(write_end, 101)
    os.dup2(high_read, 3)
    os.dup2(high_write, 4)


class DevTools:
    """The DevTools protocol over Chromium's pipe: one command at a time, events skipped or awaited."""

    def __init__(self, browser: str, user_data: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4.
        self.process = subprocess.Popen(
            [
                browser,
                "--headless=new",
                "--no-sandbox",  # root in a container or VM: Chromium's sandbox needs user namespaces
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={user_data}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(3, 4),  # kept open through the exec once preexec has put the pipes there
            preexec_fn=lambda: _as_fds_3_and_4(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read().get("method") == event:
                return
        raise TimeoutError(f"no {event} within {timeout} s")

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def log_in(base_url: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base_url}/login", timeout=10)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    if not match:
        sys.exit("no CSRF token on the login page")
    answer = session.post(
        f"{base_url}/login",
        data={"csrf_token": match.group(1), "email": email, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 302:
        sys.exit(f"login as {email} failed ({answer.status_code})")
    return session


def capture(base_url: str, path: str, cookies: requests.cookies.RequestsCookieJar, width: int, out: Path) -> None:
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        sys.exit("no Chromium: apt-get install chromium")
    host = urlsplit(base_url).hostname or "127.0.0.1"
    with tempfile.TemporaryDirectory(prefix="newsdesk-screenshot-") as user_data:
        tools = DevTools(browser, user_data)
        try:
            target = tools.send("Target.createTarget", url="about:blank")["targetId"]
            session = tools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            tools.send("Page.enable", session)
            tools.send(
                "Network.setCookies",
                session,
                cookies=[{"name": c.name, "value": c.value or "", "domain": host, "path": "/"} for c in cookies],
            )
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            tools.send("Page.navigate", session, url=base_url + path)
            tools.wait_for("Page.loadEventFired", timeout=30)
            size = tools.send("Page.getLayoutMetrics", session)["cssContentSize"]
            height = int(size["height"]) + 1
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            shot = tools.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
        finally:
            tools.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"{out}: {width}x{height} ({base_url}{path})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshot", description=__doc__)
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('HTTP_PORT', '8080')}")
    parser.add_argument("--path", default="/ops")
    parser.add_argument("--out", type=Path, default=Path("reports/monitoring/ops.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--email", help="an administrator's email (default: a new one, with --create-admin)")
    parser.add_argument("--password", default=f"pw-{uuid.uuid4().hex}")
    parser.add_argument(
        "--create-admin", action="store_true", help="create the account first (flask users create --admin, in web)"
    )
    args = parser.parse_args()
    email = args.email or f"screenshot-{uuid.uuid4().hex[:8]}@example.com"
    if args.create_admin:
        subprocess.run(
            [
                "docker",
                "compose",
                "exec",
                "-T",
                "web",
                "flask",
                "users",
                "create",
                "--admin",
                "--email",
                email,
                "--name",
                "Operator",
                "--password",
                args.password,
            ],
            check=True,
            capture_output=True,
        )
    session = log_in(args.url.rstrip("/"), email, args.password)
    capture(args.url.rstrip("/"), args.path, session.cookies, args.width, args.out)


if __name__ == "__main__":
    main()
