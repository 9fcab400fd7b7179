"""The locustfile against the running stack: a 15 s headless smoke run with no failure.

Runs Locust the way `make loadtest` does (the `locust-master` service of the `loadtest`
profile, on the stack's network, through nginx), with ten users: eight readers, one author
and one API client, so every kind of user signs in and does its work.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.e2e.stack import compose

SMOKE_USERS = 10
SMOKE_SECONDS = 15


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def locust_image(stack: str) -> None:
    """The loadtest image (built from the Dockerfile's `loadtest` stage; cached when up to date)."""
    compose("--profile", "loadtest", "build", "--quiet", "locust-master", timeout=1200)


@pytest.mark.slow
def test_locust_smoke_run_has_no_failures(locust_image: None, tmp_path: Path) -> None:
    out = tmp_path / "locust"
    out.mkdir()
    proc = compose(
        "--profile", "loadtest", "run", "--rm", "--no-deps",
        "--user", f"{os.getuid()}:{os.getgid()}",
        "-v", f"{out}:/out",
        "locust-master",
        "locust", "-f", "loadtest/locustfile.py", "--headless", "--host", "http://nginx:8080",
        "--users", str(SMOKE_USERS), "--spawn-rate", str(SMOKE_USERS), "--run-time", f"{SMOKE_SECONDS}s",
        "--stop-timeout", "5", "--csv", "/out/stats", "--json-file", "/out/stats", "--only-summary",
        "--exit-code-on-error", "0",
        timeout=SMOKE_SECONDS + 150,
    )  # fmt: skip
    # stats.json is written once every user has stopped: it counts every request (the CSV,
    # rewritten each second during the run, may miss the last ones); the CSV has the messages.
    stats = out / "stats.json"
    assert stats.exists(), f"Locust wrote no stats:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    entries = json.loads(stats.read_text())
    failures = read_csv(out / "stats_failures.csv")

    assert sum(e["num_failures"] for e in entries) == 0, "\n".join(
        f"{f['Occurrences']} x {f['Method']} {f['Name']}: {f['Error']}" for f in failures
    ) or [(e["method"], e["name"], e["num_failures"]) for e in entries if e["num_failures"]]
    assert sum(e["num_requests"] for e in entries) >= 30, entries

    requests = {(e["method"], e["name"]): e["num_requests"] for e in entries}
    # Readers, the author (register-or-login through the forms, then write) and the API client
    # (its key from the account page, then a publish) all got as far as their first write.
    for route in [
        ("GET", "/"),
        ("GET", "/articles/[id]"),
        ("POST", "/register"),
        ("POST", "/write"),
        ("POST", "/account/keys"),
        ("POST", "/api/v1/articles"),
    ]:
        assert requests.get(route, 0) > 0, f"no {route} request: {sorted(requests)}"
    # Requests are named by route, never by URL: no row names a concrete id or page.
    assert not [name for _, name in requests if any(ch.isdigit() for ch in name.replace("/api/v1/", "/"))]
