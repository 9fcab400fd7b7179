"""The verdict of `make loadtest`: a short summary of Locust's stats, and pass or fail.

    python loadtest/summary.py reports/loadtest/<time> --max-failure-ratio 0.01 --max-p95-ms 500

Reads ``stats.json`` (``locust --json-file <dir>/stats``: written once the users have
stopped, so it counts every request) or else ``stats_stats.csv`` (``--csv``: rewritten every
second while the test runs, so it may miss the last requests), prints one line per route and
method plus the aggregate, writes the same text to ``summary.txt`` beside them, and exits 1
when the failure ratio or the aggregated 95th percentile is over its bound (2 when there are
no stats at all). Failure messages come from ``stats_failures.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def number(row: dict[str, str], column: str) -> float:
    value = (row.get(column) or "").strip()
    try:
        return float(value)
    except ValueError:
        return 0.0


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def percentile(histogram: dict[int, int], total: int, fraction: float) -> float:
    """Locust's own rule (stats.calculate_response_time_percentile), on its rounded response times."""
    if total == 0:
        return 0.0
    wanted = int(total * fraction)
    processed = 0
    for response_time in sorted(histogram, reverse=True):
        processed += histogram[response_time]
        if total - processed <= wanted:
            return float(response_time)
    return 0.0


def rows_from_json(path: Path) -> list[dict[str, str]]:
    """Rows shaped like stats_stats.csv's (route rows, then "Aggregated") from ``--json-file``'s entries."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    started = min((e["start_time"] for e in entries), default=0.0)
    ended = max((e["last_request_timestamp"] or e["start_time"] for e in entries), default=0.0)
    seconds = max(ended - started, 1e-9)
    total_histogram: dict[int, int] = {}

    def row(name: str, method: str, requests: int, failures: int, histogram: dict[int, int]) -> dict[str, str]:
        return {
            "Type": method,
            "Name": name,
            "Request Count": str(requests),
            "Failure Count": str(failures),
            "50%": str(percentile(histogram, requests, 0.50)),
            "95%": str(percentile(histogram, requests, 0.95)),
            "99%": str(percentile(histogram, requests, 0.99)),
            "Requests/s": str(requests / seconds),
        }

    rows = []
    for entry in entries:
        histogram = {int(float(k)): v for k, v in entry["response_times"].items()}
        for key, count in histogram.items():
            total_histogram[key] = total_histogram.get(key, 0) + count
        rows.append(row(entry["name"], entry["method"], entry["num_requests"], entry["num_failures"], histogram))
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    rows.append(row("Aggregated", "", requests, failures, total_histogram))
    return rows


def load_stats(directory: Path) -> list[dict[str, str]] | None:
    if (directory / "stats.json").exists():
        return rows_from_json(directory / "stats.json")
    if (directory / "stats_stats.csv").exists():
        return read_rows(directory / "stats_stats.csv")
    return None


def render(rows: list[dict[str, str]]) -> list[str]:
    columns = ("requests", "failures", "p50 ms", "p95 ms", "p99 ms", "req/s")
    widths = (9, 9, 7, 7, 7, 7)
    header = f"{'method':<7} {'route':<34} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.get('Type') or '':<7} {row['Name'][:34]:<34} {int(number(row, 'Request Count')):>9} "
            f"{int(number(row, 'Failure Count')):>9} {number(row, '50%'):>7.0f} {number(row, '95%'):>7.0f} "
            f"{number(row, '99%'):>7.0f} {number(row, 'Requests/s'):>7.1f}"
        )
    return lines


def verdict(aggregate: dict[str, str], max_failure_ratio: float, max_p95_ms: float) -> list[str]:
    """Why the run fails; empty when it passes."""
    requests = number(aggregate, "Request Count")
    failures = number(aggregate, "Failure Count")
    p95 = number(aggregate, "95%")
    problems = []
    if requests == 0:
        problems.append("no request was made")
    elif failures / requests > max_failure_ratio:
        problems.append(f"failure ratio {failures / requests:.2%} is over {max_failure_ratio:.2%}")
    if p95 > max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms is over {max_p95_ms:.0f} ms")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where locust wrote stats_*.csv")
    parser.add_argument("--max-failure-ratio", type=float, default=0.01)
    parser.add_argument("--max-p95-ms", type=float, default=500.0)
    args = parser.parse_args(argv)

    rows = load_stats(args.directory)
    if rows is None:
        print(f"error: no stats.json or stats_stats.csv in {args.directory}: Locust did not finish", file=sys.stderr)
        return 2
    aggregate = next((row for row in rows if row["Name"] == "Aggregated"), None)
    if aggregate is None:
        print(f"error: the stats in {args.directory} have no aggregate", file=sys.stderr)
        return 2
    routes = sorted((row for row in rows if row is not aggregate), key=lambda r: (r["Name"], r.get("Type") or ""))
    lines = render([*routes, aggregate])
    failures_csv = args.directory / "stats_failures.csv"
    if failures_csv.exists():
        failures = read_rows(failures_csv)
        if failures:
            lines += ["", "failures:"]
            lines += [f"  {f['Occurrences']:>6} x {f['Method']} {f['Name']}: {f['Error'][:160]}" for f in failures]
    problems = verdict(aggregate, args.max_failure_ratio, args.max_p95_ms)
    bounds = f"failure ratio <= {args.max_failure_ratio:.2%}, p95 <= {args.max_p95_ms:.0f} ms"
    lines += ["", f"FAIL: {'; '.join(problems)}" if problems else f"PASS ({bounds})"]
    text = "\n".join(lines)
    print(text)
    (args.directory / "summary.txt").write_text(text + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
