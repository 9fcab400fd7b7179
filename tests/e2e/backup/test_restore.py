"""Backups and point-in-time recovery (pgBackRest) against a running stack.

The stack's `backup` service takes a full backup as soon as the repository has none; the
primary archives its WAL continuously. These tests restore the primary to a moment between two
writes (`scripts/backup.sh restore` with TARGET_TIME) and run the restore drill. They stop and
restore the database: run them in a project of their own (COMPOSE_PROJECT_NAME, NEWSDESK_URL).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import requests

from tests.e2e.stack import BASE_URL, ROOT, bearer, compose, create_key, create_user, psql_scalar
from tests.polling import wait_until

API = BASE_URL + "/api/v1"
TIMEOUT = 10
#: A restore stops and starts the whole stack and re-seeds the replica.
RESTORE_TIMEOUT = 900


def backup_labels() -> list[str]:
    out = compose("exec", "-T", "backup", "pgbackrest", "--stanza=newsdesk", "--output=json", "info").stdout
    return [backup["label"] for backup in json.loads(out)[0].get("backup", [])]


def wait_for_first_backup() -> None:
    def has_backup() -> bool:
        try:
            return bool(backup_labels())
        except (AssertionError, ValueError, IndexError):
            return False  # the service is still waiting for the primary or creating the stanza

    wait_until(has_backup, timeout=300, interval=2, message="the backup service's first full backup")


def create_articles(key: str, prefix: str, n: int) -> list[int]:
    ids = []
    with requests.Session() as http:
        for i in range(n):
            response = http.post(
                f"{API}/articles",
                json={"title": f"{prefix} {i}", "body": "Written before or after the restore point."},
                headers=bearer(key),
                timeout=TIMEOUT,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def count_articles(ids: list[int]) -> int:
    return int(psql_scalar(f"SELECT count(*) FROM articles WHERE id IN ({', '.join(map(str, ids))})"))


def wait_until_archived() -> None:
    """Switch WAL and wait until the segment holding everything written so far is archived."""
    segment = psql_scalar("SELECT pg_walfile_name(pg_switch_wal())")
    wait_until(
        lambda: psql_scalar("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment,
        timeout=120,
        interval=0.5,
        message=f"WAL segment {segment} archived",
    )


def backup_script(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/backup.sh", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=RESTORE_TIMEOUT,
    )


def readyz_in_web() -> dict | None:
    """/readyz of a web replica (nginx does not publish it): its JSON body when it answers 200."""
    code = (
        "import urllib.request\n"
        "r = urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=5)\n"
        "print(r.status, r.read().decode())\n"
    )
    proc = compose("exec", "-T", "web", "python", "-c", code, check=False)
    status, _, body = proc.stdout.strip().partition(" ")
    return json.loads(body) if status == "200" else None


def test_backups_lists_the_first_full_backup_and_the_recoverable_range(stack: str) -> None:
    wait_for_first_backup()
    proc = backup_script("list")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\bfull\b", proc.stdout), proc.stdout
    assert "archived WAL:" in proc.stdout and "recoverable:" in proc.stdout, proc.stdout


def test_point_in_time_restore_keeps_earlier_writes_and_drops_later_ones(stack: str) -> None:
    wait_for_first_backup()
    email = f"e2e-backup-{uuid.uuid4().hex[:12]}@example.com"
    create_user(email)
    key = create_key(email)

    before = create_articles(key, "before the restore point", 3)
    target = psql_scalar("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00')")
    wait_until_archived()
    after = create_articles(key, "after the restore point", 3)
    assert count_articles(before + after) == 6

    proc = backup_script("restore", TARGET_TIME=target, YES="1")
    assert proc.returncode == 0, f"restore failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"

    assert psql_scalar("SELECT pg_is_in_recovery()") == "f"
    assert count_articles(before) == len(before), "a write from before the restore point is missing"
    assert count_articles(after) == 0, "a write from after the restore point survived the restore"
    wait_until(
        lambda: psql_scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1",
        timeout=120,
        interval=1,
        message="db-replica streaming from the restored primary",
    )
    body = wait_until(readyz_in_web, timeout=120, interval=1, message="/readyz 200 after the restore")
    assert body["status"] == "ok", body
    assert requests.get(f"{BASE_URL}/healthz", timeout=TIMEOUT).status_code == 200
    (new_id,) = create_articles(key, "after the restore", 1)
    assert count_articles([new_id]) == 1
    # The re-seeded replica replays writes newer than the restore target (a clone that kept the
    # restore's recovery_target_time would promote itself at the first one) and stays a standby.
    wait_until(
        lambda: psql_scalar(f"SELECT count(*) FROM articles WHERE id = {new_id}", service="db-replica") == "1",
        timeout=60,
        interval=0.5,
        message="the write after the restore on the replica",
    )
    assert psql_scalar("SELECT pg_is_in_recovery()", service="db-replica") == "t"
    assert psql_scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"


def test_restore_drill_compares_row_counts(stack: str) -> None:
    wait_for_first_backup()
    proc = backup_script("drill")
    assert proc.returncode == 0, f"restore drill failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert lines[0] == ["table", "restored", "primary", "result"], proc.stdout
    rows = {line[0]: line[1:] for line in lines[1:]}
    assert all(row[2] in {"ok", "changed"} for row in rows.values()), proc.stdout
    assert "articles" in rows and "users" in rows, proc.stdout
    restored, primary, *_ = rows["users"]
    assert restored == primary, proc.stdout
