"""What the host-side tools share: running commands, polling, plain HTTP, progress lines."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


class CommandError(RuntimeError):
    """A command or a wait failed: the tool stops and removes what it created."""


def say(message: str) -> None:
    print(f"\033[1m==>\033[0m {message}", file=sys.stderr, flush=True)


def run(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the repository root (``stdin`` as its input); with ``check``, a non-zero exit is
    a CommandError with its output."""
    proc = subprocess.run(list(cmd), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and proc.returncode != 0:
        output = proc.stdout[-3000:] + proc.stderr[-3000:]
        raise CommandError(f"`{shlex.join(cmd)}` failed ({proc.returncode}):\n{output}")
    return proc


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_until(condition: Callable[[], T | None], timeout: float, message: str, interval: float = 0.5) -> T:
    """Poll ``condition`` until it returns something truthy (errors count as not yet) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, CommandError):
            result = condition()
            if result:
                return result
        time.sleep(interval)
    raise CommandError(f"timed out after {timeout:.0f}s: {message}")
