"""`make chaos`: the faults operators meet, one at a time, under a steady load; then the data is checked.

    python -m tools.chaos [--faults all|short|web-kill,deploy,...] [--rate 50] [--keep]
    python -m tools.chaos --attach --project newsdesk-test --port 8180 --faults short   (make test)

By default the suite starts a compose project of its own (``newsdesk-chaos``, nginx on
127.0.0.1:8280, as ``make up`` starts one: 3 web replicas, 2 workers, seeded), and removes it at
the end, also on failure, Ctrl-C or SIGTERM (``--keep`` keeps it). The user's stack (project
``newsdesk``) is never touched. ``--attach`` uses a project that is already running and leaves
it running (``make test`` runs the short version in its own test project that way).

For each fault: the mix of ``tools/chaos/load.py`` (about 50 requests/s: 80% reads, 20% API
writes) runs 5 s, the fault is injected and repaired (``tools/chaos/faults.py``), the load
runs 8 s more, and then the data is checked. The summary goes to reports/chaos/summary.md
(``--report``); the exit status is 1 when any promise is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from dotenv import dotenv_values

from loadtest.openloop import percentile
from tools.chaos import checks
from tools.chaos.faults import SHORT, Context, Fault, Window, select
from tools.chaos.load import VIEWS, MixedLoad, Outcome
from tools.chaos.project import Project
from tools.shell import ROOT, CommandError, say

LEAD_S = 5.0  # load before the fault
TAIL_S = 8.0  # load after the repair
WRITERS, KEYS_PER_WRITER = 4, 4  # 16 keys: 10 writes/s is ~38 a minute per key, under the limit of 60
READ_ARTICLES = 20


@dataclass
class Row:
    fault: Fault
    requests: int = 0
    failed: int = 0
    tolerated: int = 0
    refused: int = 0
    resent: int = 0
    p99_ms: float | None = None
    recover_s: float | None = None
    lost: list[str] = field(default_factory=list)
    window: Window = field(default_factory=Window)

    @property
    def passed(self) -> bool:
        return not self.window.problems


def describe_failures(outcomes: list[Outcome]) -> str:
    kinds: dict[str, int] = {}
    for o in outcomes:
        label = f"{o.kind} {o.status or o.error}"
        kinds[label] = kinds.get(label, 0) + 1
    return ", ".join(f"{count} x {label}" for label, count in sorted(kinds.items()))


#: How many failed requests a report traces through the logs.
TRACED = 5


def trace_failures(project: Project, failed: list[Outcome], window: Window) -> str:
    """The first failed requests, each with what nginx (and a web replica still running) logged
    under its X-Request-ID: which replica it went to, what came back and when. A failure that
    happens once in many runs then explains itself in the report."""
    logs = {
        service: project.compose("logs", "--no-color", "--no-log-prefix", service, check=False)
        for service in ("nginx", "web")
    }
    lines = []
    for o in sorted(failed, key=lambda o: o.due)[:TRACED]:
        found = [
            f"{service}: {line.strip()[:400]}"
            for service, text in logs.items()
            for line in text.splitlines()
            if o.request_id and o.request_id in line
        ]
        lines.append(
            f"{o.kind} due {o.due - window.started:+.1f} s from the fault, {o.status or o.error} after"
            f" {o.answer_s:.2f} s, X-Request-ID {o.request_id}: " + ("; ".join(found[:3]) or "in no log")
        )
    return "traced: " + " | ".join(lines)


def write_outcomes(path: Path, outcomes: list[Outcome], window: Window) -> None:
    """Every request of a fault's phase as JSON lines, times in seconds from the fault's start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write(json.dumps({"fault_started": 0.0, "repaired": round(window.repaired - window.started, 3)}) + "\n")
        for o in sorted(outcomes, key=lambda o: o.due):
            row = {**asdict(o), "due": round(o.due - window.started, 3), "sent": round(o.sent - window.started, 3)}
            out.write(json.dumps(row) + "\n")


def run_fault(
    ctx: Context,
    fault: Fault,
    keys: list[str],
    articles: list[int],
    rate: float,
    views: int,
    outcomes_dir: Path | None = None,
) -> tuple[Row, int]:
    project = ctx.project
    row = Row(fault)
    window = row.window
    say(f"{fault.name}: {fault.description}")
    fault.prepare(ctx)
    load = MixedLoad(project.base_url, keys, articles, rate, seed=ctx.rng.randrange(1 << 30))
    load.start()
    try:
        time.sleep(LEAD_S)
        fault.inject(ctx, window)
    except CommandError as exc:
        window.problems.append(f"the fault could not be injected and repaired: {exc}")
    finally:
        window.started = window.started or time.monotonic()
        window.repaired = window.repaired or time.monotonic()
        time.sleep(TAIL_S)
        outcomes = load.stop()
    ended = time.monotonic()
    if outcomes_dir is not None:
        write_outcomes(outcomes_dir / f"{fault.name}.jsonl", outcomes, window)
    fault.assess(outcomes, window)

    row.requests = len(outcomes)
    row.resent = sum(o.resent for o in outcomes)
    refused = [o for o in outcomes if o.refused]
    row.refused = len(refused)
    bad = [o for o in outcomes if not o.ok and not (o.refused and fault.refusals_expected)]
    tolerated = [o for o in bad if fault.tolerated(o, window)]
    failed = [o for o in bad if not fault.tolerated(o, window)]
    row.failed, row.tolerated = len(failed), len(tolerated)
    if failed:
        window.problems.append(f"{len(failed)} requests failed: {describe_failures(failed)}")
        window.problems.append(trace_failures(project, failed, window))
    if tolerated:
        window.notes.append(f"{len(tolerated)} writes in flight on the killed replica got 502 (never resent)")
    # Recovered: the repair is done and every request since got its normal answer.
    last_abnormal = max((o.done for o in outcomes if not o.ok), default=window.started)
    recovered = max(window.repaired, last_abnormal)
    if recovered > ended - 3:
        window.problems.append("requests were still failing at the end of the phase")
    row.recover_s = round(recovered - window.started, 1)
    row.p99_ms = percentile(sorted(o.latency * 1000 for o in outcomes if window.started <= o.due <= recovered + 1), 99)

    # The data.
    acknowledged = [o.article_id for o in outcomes if o.kind == "write" and o.ok and o.article_id is not None]
    missing = checks.missing_writes(project, acknowledged)
    if missing:
        row.lost.append(f"{len(missing)} acknowledged writes")
        window.problems.append(f"acknowledged writes missing from the primary: {missing[:10]}")
    left = checks.wait_processed(project, window.repaired + fault.process_within)
    if left:
        row.lost.append(f"{left} articles never processed")
        window.problems.append(f"{left} articles not `ready` {fault.process_within:.0f} s after the repair")
    settled = checks.settled_views(project, articles)
    made = sum(1 for o in outcomes if o.kind in VIEWS and o.ok)
    # A read that failed after its view was counted (its answer lost) may be counted too.
    unanswered = sum(1 for o in outcomes if o.kind in VIEWS and not o.ok)
    counted = settled - views
    if counted > made + unanswered:
        window.problems.append(f"{counted - made} views counted twice ({counted} counted, {made} made)")
    elif counted > made:
        window.notes.append(f"{counted - made} reads whose answer was lost were counted as views")
    elif counted < made:
        during = sum(
            1 for o in outcomes if o.kind in VIEWS and o.ok and window.started - 1 <= o.due <= window.repaired + 1
        )
        row.lost.append(f"{made - counted} of {made} views (bound: the {during} made during the outage)")
        if not fault.views_may_be_lost or made - counted > during:
            window.problems.append(f"{made - counted} of {made} views were not counted")
    if load.created:
        stale = checks.stale_reads(project.base_url, *load.created[-1])
        if stale:
            window.problems.append(stale)
    # After the checks: they judge the state the fault left (a scale-down meanwhile is not it).
    fault.restore(ctx)
    verdict = "passed" if row.passed else "FAILED: " + "; ".join(window.problems)
    say(f"{fault.name}: {row.requests} requests, {row.failed} failed, p99 {row.p99_ms or 0:.0f} ms, {verdict}")
    return row, settled


def machine() -> str:
    cores = os.cpu_count()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True)
    return f"{platform.system()} {platform.release()}, {cores} cores, {mem_gib:.0f} GiB, Docker {docker.stdout.strip()}"


def write_report(path: Path, rows: list[Row], args: argparse.Namespace, command: str) -> str:
    lines = [
        "# Chaos: one fault at a time under load",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command}`, project `{args.project}`; {machine()}.",
        f"Load: an open-loop mix at {args.rate:g} requests/s through nginx (80% reads: pages and keyed API;"
        f" 20% API writes over {WRITERS * KEYS_PER_WRITER} keys), from {LEAD_S:g} s before each fault to"
        f' {TAIL_S:g} s after its repair. "p99 during" covers the requests due from the fault to its recovery;'
        ' "recovered" is when the repair was done and every request since got its normal answer;'
        ' "resent": requests sent again on a new connection because nginx had closed the kept-alive one'
        " before answering (on its graceful reload), as browsers do (see tools/chaos/load.py): not failures.",
        "",
        "| fault | requests | failed | refused (read-only) | resent | p99 during (ms) | recovered (s) | data lost"
        " | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        failed = f"{row.failed}" + (f" (+{row.tolerated} in flight)" if row.tolerated else "")
        lines.append(
            f"| {row.fault.name}: {row.fault.description} | {row.requests} | {failed} | {row.refused} | {row.resent}"
            f" | {row.p99_ms or 0:.0f} | {row.recover_s} | {'; '.join(row.lost) or 'none'}"
            f" | {'pass' if row.passed else '**FAIL**'} |"
        )
    lines.append("")
    for row in rows:
        details = [*row.window.notes, *(f"**broken:** {problem}" for problem in row.window.problems)]
        if details:
            lines.append(f"- {row.fault.name}: " + "; ".join(details))
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = {**dotenv_values(ROOT / ".env"), **os.environ}
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default="all", help=f"all, short ({','.join(SHORT)}), or a comma list")
    parser.add_argument("--project", default=settings.get("CHAOS_PROJECT") or "newsdesk-chaos")
    parser.add_argument("--port", type=int, default=int(settings.get("CHAOS_HTTP_PORT") or 8280))
    parser.add_argument("--https-port", type=int, default=int(settings.get("CHAOS_HTTPS_PORT") or 8643))
    parser.add_argument("--attach", action="store_true", help="use the running project; leave it running")
    parser.add_argument("--keep", action="store_true", help="keep the project the suite started")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "chaos" / "summary.md")
    parser.add_argument("--outcomes", type=Path, help="write every request of each fault to DIR/<fault>.jsonl")
    args = parser.parse_args(argv)
    if args.faults == "short":
        args.faults = ",".join(SHORT)
    return args


def on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m tools.chaos " + shlex.join(argv if argv is not None else sys.argv[1:])
    faults = select(args.faults)
    project = Project(args.project, args.port, args.https_port)
    if project.name == "newsdesk" and not args.attach:
        raise SystemExit("the suite will not create or remove the user's project `newsdesk`; use --attach to target it")
    signal.signal(signal.SIGTERM, on_signal)
    started_here = False
    try:
        if args.attach:
            if not project.is_running():
                raise SystemExit(f"project {project.name} is not running (--attach)")
        else:
            if project.compose("ps", "-a", "-q").strip():
                say(f"project {project.name} is left over from an earlier run: removing it first")
                project.down()
            started_here = True
            project.up()
        password = secrets.token_urlsafe(16)
        emails, keys = project.setup_writers(WRITERS, KEYS_PER_WRITER, password)
        articles = project.readable_articles(READ_ARTICLES)
        views = checks.settled_views(project, articles)
        ctx = Context(project, emails, password, random.Random(11))
        rows = []
        for fault in faults:
            row, views = run_fault(ctx, fault, keys, articles, args.rate, views, args.outcomes)
            rows.append(row)
        report = write_report(args.report, rows, args, command)
        print(report)
        broken = [row.fault.name for row in rows if not row.passed]
        if broken:
            say(f"promises broken under: {', '.join(broken)} (details in {args.report})")
            return 1
        say(f"every promise held ({args.report})")
        return 0
    finally:
        if started_here and not args.keep:
            project.down()


if __name__ == "__main__":
    sys.exit(main())
