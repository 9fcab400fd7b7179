"""What is checked after each fault, on the data itself (PostgreSQL, Redis) and through nginx."""

from __future__ import annotations

import re
import time
import uuid

import requests

from tools.chaos.project import Project
from tools.shell import CommandError, wait_until

PENDING_VIEWS = "newsdesk:views:pending"
VIEW_BATCHES = "newsdesk:views:batch:*"


def missing_writes(project: Project, created: list[int]) -> list[int]:
    """Acknowledged (201) articles that are not in the primary."""
    if not created:
        return []
    found = project.psql(f"SELECT id FROM articles WHERE id IN ({','.join(str(int(i)) for i in created)})")
    return sorted(set(created) - {int(row) for row in found.split()})


def unprocessed(project: Project) -> int:
    return int(project.psql("SELECT count(*) FROM articles WHERE status <> 'ready'"))


def wait_processed(project: Project, deadline: float) -> int:
    """Poll until every article is `ready` or the monotonic ``deadline`` passes; the number left."""
    while True:
        left = unprocessed(project)
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(1)


def settled_views(project: Project, article_ids: list[int], timeout: float = 60) -> int:
    """The views of ``article_ids`` in PostgreSQL once beat has flushed every pending count.

    Called when the load has stopped. Each web process still holds the views of its last
    VIEW_FLUSH_SECONDS and sends them on its next tick: an empty pending hash before then does
    not mean they are all in (a deploy's check once read 7 of 1,294 short)."""
    held_until = time.monotonic() + project.view_flush_seconds + 1.0

    def flushed() -> bool:
        return (
            time.monotonic() >= held_until
            and project.redis("EXISTS", PENDING_VIEWS) == "0"
            and not project.redis("--scan", "--pattern", VIEW_BATCHES)
        )

    wait_until(flushed, timeout, "the web processes and then beat to flush the pending view counts", interval=0.5)
    ids = ",".join(str(int(i)) for i in article_ids)
    return int(project.psql(f"SELECT coalesce(sum(views), 0) FROM articles WHERE id IN ({ids})"))


def stale_reads(base_url: str, article_id: int, key: str, reads: int = 6) -> str | None:
    """Edit an article, then read it anonymously (page and API, cached paths): what was stale, if anything."""
    title = f"Edited {uuid.uuid4().hex[:12]}"
    bearer = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 30
    while True:  # the primary may have just come back: a refused edit is retried
        response = requests.patch(
            f"{base_url}/api/v1/articles/{article_id}", json={"title": title}, headers=bearer, timeout=10
        )
        if response.status_code == 200:
            break
        if response.status_code != 503 or time.monotonic() > deadline:
            return f"the edit of article {article_id} answered {response.status_code}"
        time.sleep(0.5)
    stale = 0
    for _ in range(reads):
        api = requests.get(f"{base_url}/api/v1/articles/{article_id}", timeout=10)
        page = requests.get(f"{base_url}/articles/{article_id}", timeout=10)
        stale += (api.status_code != 200 or api.json().get("title") != title) + (
            page.status_code != 200 or title not in page.text
        )
    return f"{stale} of {2 * reads} reads right after an edit were stale" if stale else None


def login(base_url: str, email: str, password: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base_url}/login", timeout=10)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
    if not match:
        raise CommandError("no csrf_token on /login")
    response = browser.post(
        f"{base_url}/login",
        data={"email": email, "password": password, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302 or not logged_in(base_url, browser):
        raise CommandError(f"logging in as {email} failed ({response.status_code})")
    return browser


def logged_in(base_url: str, browser: requests.Session) -> bool:
    """/account answers the page itself (a logged-out visitor is redirected to /login)."""
    return browser.get(f"{base_url}/account", allow_redirects=False, timeout=10).status_code == 200
