"""The load generators in the bench-client container and the request files they replay.

wrk (Debian's package, closed loop, driven by loadtest/mix.lua) and loadtest/openloop.py (open
loop) both print one tagged JSON line; the functions here start them and read that line.

A request file has one request per line, ``METHOD<TAB>PATH[<TAB>Header: value]...[<TAB>body=TEXT]``
(see loadtest/mix.lua); the ones here: ``mix.tsv`` (today's read mix), ``cached.tsv`` (its
cached parts only), ``static.tsv`` and ``hello.tsv`` (the baselines), ``home.tsv`` (the
anonymous home page, for the cache-hit probe), one file per uncached path of the data-size
runs, and ``writes-<round>.tsv`` (distinct articles to publish).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.bench.compose import BenchError, Stack

CLIENT = "bench-client"
CLIENT_DIR = "/tmp/bench"  # inside bench-client: the mix files
LUA = "/srv/loadtest/mix.lua"
OPENLOOP = "/srv/loadtest/openloop.py"
HTML_PER_PAGE = 20
MIX_SIZE = 1000
#: The scenarios of the scaling runs: their request file and what they hold.
SCENARIO_FILES = {"mix": "mix.tsv", "cached": "cached.tsv"}


def tagged_json(output: str, tag: str, tool: str) -> dict[str, Any]:
    """The JSON after ``tag`` on the generator's result line."""
    line = next((line for line in output.splitlines() if line.startswith(f"{tag} ")), None)
    if line is None:
        raise BenchError(f"no result from {tool}:\n{output[-2000:]}")
    return json.loads(line.removeprefix(f"{tag} "))


def wrk_result(output: str) -> dict[str, Any]:
    """wrk's WRK_JSON line (microseconds) as the report's figures (req/s, ms, error counts)."""
    data = tagged_json(output, "WRK_JSON", "wrk")
    seconds = data["duration_us"] / 1e6
    latency = data["latency_us"]
    return {
        "rps": round(data["requests"] / seconds, 1) if seconds else 0.0,
        "requests": data["requests"],
        "duration_s": round(seconds, 3),
        **{f"{name}_ms": round(latency[name] / 1000, 2) for name in ("p50", "p90", "p99", "p999", "max", "mean")},
        "errors": sum(data["errors"].values()),
        "error_kinds": {k: v for k, v in data["errors"].items() if v},
        # What the "status" errors were (counted with WRK_COUNT_STATUSES=1 only).
        "error_statuses": {code: n for code, n in data.get("statuses", {}).items() if int(code) >= 400},
    }


def page_counts(total: int) -> tuple[int, int]:
    """How many HTML list pages (at most 10) and API list pages (at most 50) ``total`` articles fill."""
    return max(1, min(10, -(-total // HTML_PER_PAGE))), max(1, min(50, -(-total // 20)))


def mix_lines(ids: list[int], total: int, key: str, weights: Mapping[str, int]) -> list[str]:
    """The read mix, one request per line (method, path, optional header), in a fixed random order."""
    rng = random.Random(1)
    html_pages, api_pages = page_counts(total)
    front = ids[:HTML_PER_PAGE]
    counts = {kind: round(MIX_SIZE * w / sum(weights.values())) for kind, w in weights.items()}
    lines: list[str] = []
    for _ in range(counts["detail"]):
        article = rng.choice(front) if rng.random() < 0.7 else rng.choice(ids)
        lines.append(f"GET\t/articles/{article}")
    for _ in range(counts["list"]):
        lines.append(f"GET\t/?page={rng.randint(1, html_pages)}")
    for _ in range(counts["uncached"]):
        lines.append(f"GET\t/api/v1/articles?page={rng.randint(1, api_pages)}&per_page=20\tAuthorization: Bearer {key}")
    rng.shuffle(lines)
    return lines


def cached_weights(weights: Mapping[str, int]) -> dict[str, int]:
    """The mix's cached parts in the same proportions between them (no uncached reads)."""
    return {**weights, "uncached": 0}


def request_line(method: str, path: str, headers: Mapping[str, str] | None = None, body: str | None = None) -> str:
    """One line of a request file; a body must not hold tabs or newlines (JSON from json.dumps has none)."""
    fields = [method, path, *(f"{name}: {value}" for name, value in (headers or {}).items())]
    if body is not None:
        if "\t" in body or "\n" in body:
            raise ValueError("a request body in a request file cannot hold tabs or newlines")
        fields.append(f"body={body}")
    return "\t".join(fields)


def write_lines(key: str, label: str, count: int) -> list[str]:
    """``count`` distinct articles to publish with ``key`` through the API (JSON bodies)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return [
        request_line(
            "POST",
            "/api/v1/articles",
            headers,
            json.dumps(
                {
                    "title": f"Benchmark write {label}-{n}",
                    "body": f"Written by make bench's read/write run ({label}, number {n}) to measure"
                    " what a steady trickle of writes does to the cached pages.",
                }
            ),
        )
        for n in range(1, count + 1)
    ]


class LoadClient:
    """wrk and openloop.py in the stack's bench-client container, and the request files they read."""

    def __init__(self, stack: Stack, threads: int) -> None:
        self.stack = stack
        self.threads = threads
        self.files: dict[str, list[str]] = {}

    def put(self, files: Mapping[str, list[str]]) -> None:
        """Add (or replace) request files; bench-client's directory then holds every file put so far."""
        self.files.update(files)
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in self.files.items():
                path = Path(tmp) / name
                path.write_text("\n".join(content) + "\n")
                path.chmod(0o644)
            Path(tmp).chmod(0o755)
            self.stack.copy_into(CLIENT, Path(tmp), CLIENT_DIR)

    def write_mixes(self, ids: list[int], total: int, key: str, weights: Mapping[str, int]) -> dict[str, Any]:
        """The read mixes, the baselines' and the probe's files into bench-client; what the mix holds."""
        lines = mix_lines(ids, total, key, weights)
        self.put(
            {
                "mix.tsv": lines,
                "cached.tsv": mix_lines(ids, total, key, cached_weights(weights)),
                "static.tsv": ["GET\t/bench/static"],
                "hello.tsv": ["GET\t/"],
                "home.tsv": ["GET\t/"],
            }
        )
        html_pages, api_pages = page_counts(total)
        front = len(ids[:HTML_PER_PAGE])
        return {
            "weights": dict(weights),
            "requests": len(lines),
            "detail": f"/articles/<id>: {len(ids)} newest articles, 70% from the front page's {front}",
            "list": f"/?page=1..{html_pages}",
            "uncached": f"/api/v1/articles?page=1..{api_pages}&per_page=20 with an API key",
        }

    def wrk_output(
        self, url: str, mix: str, connections: int, seconds: float, threads: int, statuses: bool = False
    ) -> str:
        return self.stack.exec(
            CLIENT,
            *("wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", LUA, url),
            *("--", f"{CLIENT_DIR}/{mix}"),
            timeout=seconds + 60,
            env={"WRK_COUNT_STATUSES": "1" if statuses else "0"},
        )

    def wrk(self, url: str, mix: str, connections: int, seconds: float, statuses: bool = True) -> dict[str, Any]:
        """A closed-loop run: ``connections`` connections replay ``mix`` against ``url`` for ``seconds``;
        with ``statuses``, the error responses are counted by status (a little client CPU each)."""
        threads = max(1, min(self.threads, connections))
        return wrk_result(self.wrk_output(url, mix, connections, seconds, threads, statuses))

    def answers(self, url: str, mix: str) -> bool:
        """A one-second, one-connection wrk run gets through to ``url``."""
        return "WRK_JSON" in self.wrk_output(url, mix, 1, 1, 1)

    def open_loop(
        self, mix: str, rate: float, duration: float, warmup: float, count_header: str | None = None
    ) -> dict[str, Any]:
        """loadtest/openloop.py through nginx at ``rate`` req/s: latency from each request's scheduled time;
        with ``count_header``, how many responses carried each value of that header."""
        counting = ("--count-header", count_header) if count_header else ()
        output = self.stack.exec(
            CLIENT,
            *("python", OPENLOOP, "--url", "http://nginx:8080", "--mix", f"{CLIENT_DIR}/{mix}"),
            *("--rate", f"{rate:.2f}", "--duration", f"{duration:g}", "--warmup", f"{warmup:g}", *counting),
            timeout=duration + warmup + 120,
        )
        return tagged_json(output, "OPENLOOP_JSON", "openloop.py")
