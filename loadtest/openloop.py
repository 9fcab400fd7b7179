"""Open-loop HTTP load at a fixed rate, with latency measured from each request's scheduled time.

    python loadtest/openloop.py --url http://nginx:8080 --mix /tmp/mix.tsv --rate 200 --duration 20 --warmup 3

A closed-loop generator (wrk, Locust's default users) sends the next request only when the
previous one has answered, so a stalled server also stalls the clock that measures it
("coordinated omission"), and its tail latencies look better than what users see. Here
request *i* is due at ``start + i / rate`` whatever happened before; its latency is counted
from that moment, so time spent waiting for a free connection or behind a slow response is
included. wrk2 would do the same but is not packaged by Debian; this needs only the
standard library (asyncio and a minimal HTTP/1.1 keep-alive client).

The mix file is the one loadtest/mix.lua replays: one request per line,
``METHOD<TAB>PATH[<TAB>Header: value]...[<TAB>body=TEXT]``, cycled in order.

Prints one line, ``OPENLOOP_JSON {...}``: the target and achieved rate, errors by kind,
latency percentiles in ms, and the generator's own lag (how late requests left; when its
p99 is more than a few ms the generator, not the server, is the limit). With
``--count-header X-Cache`` it also counts the measured answers (status below 400) by that
header's value (lower-cased; ``(none)`` when absent): `make bench` probes the home page's
cache that way.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_LIMIT = 1 << 22


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    host_header: str


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"only http://host[:port] URLs are supported, got {url!r}")
    port = parts.port or 80
    return Target(parts.hostname, port, parts.netloc)


def request_bytes(line: str, host_header: str) -> bytes:
    """One line of a mix file as a ready-to-send HTTP/1.1 request."""
    method, path, *fields = line.split("\t")
    headers = [f"Host: {host_header}"]
    body = b""
    for field_ in fields:
        if field_.startswith("body="):
            body = field_.removeprefix("body=").encode("utf-8")
            headers.append(f"Content-Length: {len(body)}")
        else:
            headers.append(field_)
    head = "\r\n".join([f"{method} {path} HTTP/1.1", *headers, "", ""])
    return head.encode("latin-1") + body


def load_mix(path: str, host_header: str) -> list[bytes]:
    """The mix file's requests, as ready-to-send HTTP/1.1 bytes."""
    requests: list[bytes] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            requests.append(request_bytes(line, host_header))
    if not requests:
        raise SystemExit(f"{path}: no requests")
    return requests


class ProtocolError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    async def exchange(self, raw: bytes, count_header: bytes = b"") -> tuple[int, str | None]:
        """Send ``raw``, read the whole response; its status and the value of ``count_header`` (lower-cased)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        try:
            status = int(status_line.split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {status_line[:80]!r}") from None
        headers: dict[bytes, bytes] = {}
        for header in header_block.split(b"\r\n"):
            name, sep, value = header.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"connection") == b"close":
            self.reusable = False
        counted = headers.get(count_header)
        value = None if counted is None else counted.decode("latin-1")
        if status in (204, 304) or 100 <= status < 200:
            return status, value
        if headers.get(b"transfer-encoding", b"").endswith(b"chunked"):
            await self._read_chunked()
        elif b"content-length" in headers:
            await self.reader.readexactly(int(headers[b"content-length"]))
        else:
            await self.reader.read()  # delimited by the end of the connection
            self.reusable = False
        return status, value

    async def _read_chunked(self) -> None:
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailers, if any, end with an empty line.
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            await self.reader.readexactly(size + 2)

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Idle keep-alive connections; opens new ones up to ``limit``, then makes callers wait."""

    def __init__(self, target: Target, limit: int) -> None:
        self.target = target
        self.limit = limit
        self.idle: collections.deque[Connection] = collections.deque()
        self.open = 0
        self.waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()

    async def acquire(self) -> Connection:
        if self.idle:
            return self.idle.pop()
        if self.open < self.limit:
            self.open += 1
            try:
                reader, writer = await asyncio.open_connection(self.target.host, self.target.port, limit=READ_LIMIT)
            except BaseException:
                self.open -= 1
                self._wake_one()
                raise
            return Connection(reader, writer)
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        conn = await waiter
        return conn if conn is not None else await self.acquire()

    def release(self, conn: Connection, healthy: bool) -> None:
        if healthy and conn.reusable:
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            self.idle.append(conn)
            return
        conn.close()
        self.open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        """A slot freed up: let one waiter open a connection itself."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    header_values: collections.Counter[str] = field(default_factory=collections.Counter)
    completed: int = 0


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def one_request(
    pool: Pool, raw: bytes, due: float, measured: bool, timeout: float, results: Results, count_header: bytes
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()  # how late the generator itself was, before any wait for a connection
    conn: Connection | None = None
    healthy = False
    try:
        async with asyncio.timeout(timeout):
            conn = await pool.acquire()
            status, value = await conn.exchange(raw, count_header)
        healthy = True
        finished = loop.time()
        if measured:
            results.completed += 1
            results.statuses[status] += 1
            if count_header and status < 400:  # errors are counted as errors, not by header
                results.header_values["(none)" if value is None else value] += 1
            results.latencies.append(finished - due)
            results.lags.append(started - due)
            if status >= 400:
                results.errors[f"status_{status}"] += 1
    except TimeoutError:
        if measured:
            results.errors["timeout"] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError) as exc:
        if measured:
            results.errors[type(exc).__name__] += 1
    finally:
        if conn is not None:
            pool.release(conn, healthy)


async def run(args: argparse.Namespace) -> dict[str, object]:
    target = parse_target(args.url)
    mix = load_mix(args.mix, target.host_header)
    pool = Pool(target, args.connections)
    results = Results()
    count_header = (args.count_header or "").strip().lower().encode("latin-1")
    loop = asyncio.get_running_loop()
    interval = 1.0 / args.rate
    total = round(args.rate * (args.warmup + args.duration))
    first_measured = round(args.rate * args.warmup)
    tasks: set[asyncio.Task[None]] = set()
    start = loop.time() + 0.1
    for i in range(total):
        due = start + i * interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        request = one_request(pool, mix[i % len(mix)], due, i >= first_measured, args.timeout, results, count_header)
        task = loop.create_task(request)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=args.timeout + 1)
    for task in list(tasks):  # cannot happen (every request has a timeout); counted as errors below
        task.cancel()
    elapsed_measured = (loop.time() - start) - args.warmup
    pool.close()

    latencies = sorted(results.latencies)
    lags = sorted(results.lags)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    scheduled = total - first_measured
    failed = sum(count for kind, count in results.errors.items() if not kind.startswith("status_"))
    unfinished = max(0, scheduled - results.completed - failed)
    if unfinished:
        results.errors["unfinished"] += unfinished
    counted = {"header_counts": dict(sorted(results.header_values.items()))} if count_header else {}
    return {
        "target_rps": args.rate,
        "scheduled": scheduled,
        "completed": results.completed,
        "rps": round(results.completed / args.duration, 2),
        "elapsed_s": round(elapsed_measured, 3),
        "errors": sum(results.errors.values()),
        "error_kinds": dict(results.errors),
        "statuses": {str(k): v for k, v in sorted(results.statuses.items())},
        "p50_ms": ms(percentile(latencies, 50)),
        "p90_ms": ms(percentile(latencies, 90)),
        "p99_ms": ms(percentile(latencies, 99)),
        "p999_ms": ms(percentile(latencies, 99.9)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "generator_lag_p99_ms": ms(percentile(lags, 99)),
        "connections_opened": pool.open,
        **counted,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host[:port] to send the mix to")
    parser.add_argument("--mix", required=True, help="mix file (see loadtest/mix.lua)")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the same rate before measuring")
    parser.add_argument("--connections", type=int, default=512, help="most connections open at once")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a request counts as an error")
    parser.add_argument("--count-header", help="count the measured responses by this header's value")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rate and --duration must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gc.disable()  # no collector pauses in the middle of the schedule; the run is short
    started = time.time()
    result = asyncio.run(run(args))
    result["wall_s"] = round(time.time() - started, 3)
    sys.stdout.write("OPENLOOP_JSON " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
