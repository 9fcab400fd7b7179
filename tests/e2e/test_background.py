"""Background work, shared caching, rate limits and observability, through nginx."""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.stack import (
    BASE_URL,
    bearer,
    compose,
    container_ids,
    create_user,
    csrf_token,
    hostnames,
    login,
    psql_scalar,
    scale,
)
from tests.polling import wait_until

BODY = (
    "The harbour authority approved a new container terminal on Monday. Engineers expect the terminal to double "
    "the port's capacity within five years.\n\nEnvironmental groups warned that dredging the harbour would harm "
    "the seagrass meadows. The authority promised a monitoring programme for the seagrass and the water quality."
    "\n\nConstruction of the terminal starts in spring. Shipping companies welcomed the decision."
)


def create_article(key: str, title: str = "Harbour terminal approved", headers: dict | None = None) -> dict:
    response = requests.post(
        f"{BASE_URL}/api/v1/articles",
        json={"title": title, "body": BODY},
        headers={**bearer(key), **(headers or {})},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_created_article_is_processed_within_15_seconds(api_key: str) -> None:
    article = create_article(api_key)
    assert article["status"] == "processing"

    def ready() -> dict | None:
        body = requests.get(f"{BASE_URL}/api/v1/articles/{article['id']}", headers=bearer(api_key), timeout=10).json()
        return body if body["status"] == "ready" else None

    done = wait_until(ready, timeout=15, interval=0.25, message="article processed")
    assert (done["summary"] and done["summary"] in BODY.replace("\n\n", " ")) or done["summary"].split(". ")[0] in BODY
    assert 5 <= len(done["keywords"]) <= 10
    assert {"terminal", "harbour"} <= set(done["keywords"])


def views(article_id: int) -> int:
    return int(psql_scalar(f"SELECT views FROM articles WHERE id = {article_id}"))


def wait_for_views(article_id: int, at_least: int) -> int:
    """The article's view count once it has reached ``at_least`` (beat flushes every 2 s)."""
    return wait_until(
        lambda: (counted := views(article_id)) >= at_least and counted,
        timeout=20,
        interval=0.25,
        message=f"views >= {at_least}",
    )


def test_five_hundred_anonymous_reads_are_five_hundred_views(api_key: str) -> None:
    article = create_article(api_key, title="Counted")
    article_id = article["id"]
    assert views(article_id) == 0
    served: Counter = Counter()
    with requests.Session() as anonymous:
        for i in range(500):
            path = f"/articles/{article_id}" if i % 2 else f"/api/v1/articles/{article_id}"
            response = anonymous.get(BASE_URL + path, timeout=10)
            assert response.status_code == 200, response.text[:200]
            served[response.headers["X-Served-By"]] += 1
        assert len(served) >= 2, f"reads were not spread over replicas: {served}"
        assert wait_for_views(article_id, 500) == 500
        # And for good: each later flush adds its own read once, never an earlier batch again.
        for expected in (501, 502):
            assert anonymous.get(f"{BASE_URL}/articles/{article_id}", timeout=10).status_code == 200
            assert wait_for_views(article_id, expected) == expected


def test_an_anonymous_list_shows_a_new_article_at_once(api_key: str) -> None:
    with requests.Session() as anonymous:
        before = anonymous.get(f"{BASE_URL}/api/v1/articles?per_page=5", timeout=10).json()
        page_before = anonymous.get(f"{BASE_URL}/", timeout=10).text
        title = f"Breaking {uuid.uuid4().hex[:8]}"
        assert title not in page_before
        created = create_article(api_key, title=title)
        after = anonymous.get(f"{BASE_URL}/api/v1/articles?per_page=5", timeout=10).json()
        assert after["items"][0]["id"] == created["id"]
        assert after["total"] == before["total"] + 1
        assert title in anonymous.get(f"{BASE_URL}/", timeout=10).text


@pytest.fixture
def clear_limits() -> Iterator[None]:
    """The login limit blocks this machine's address for a minute: clear it afterwards."""
    yield
    script = (
        "for _, k in ipairs(redis.call('KEYS', '*newsdesk:limits/*auth.login*')) do redis.call('DEL', k) end return 1"
    )
    compose("exec", "-T", "redis", "redis-cli", "-n", "3", "EVAL", script, "0")


def test_the_eleventh_failed_login_in_a_minute_is_refused(stack: str, clear_limits: None) -> None:
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    create_user(email)
    statuses = []
    with requests.Session() as browser:
        for _ in range(11):
            token = csrf_token(browser.get(f"{BASE_URL}/login", timeout=10).text)
            response = browser.post(
                f"{BASE_URL}/login",
                data={"csrf_token": token, "email": email, "password": "wrong-password"},
                allow_redirects=False,
                timeout=10,
            )
            statuses.append(response.status_code)
    assert all(s != 429 and s < 500 for s in statuses[:10]), statuses
    assert statuses[10] == 429, statuses
    assert int(response.headers["Retry-After"]) > 0


def web_get(path: str) -> str:
    code = (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://127.0.0.1:8000{path}', timeout=10).read().decode())\n"
    )
    return compose("exec", "-T", "web", "python", "-c", code).stdout


def test_metrics_answer_on_a_replica_and_not_through_nginx(api_key: str) -> None:
    requests.get(f"{BASE_URL}/api/v1/articles", timeout=10)
    text = web_get("/metrics")
    for name in (
        "newsdesk_http_request_duration_seconds_bucket",
        "newsdesk_cache_requests_total",
        "newsdesk_db_reads_total",
    ):
        assert name in text, name
    assert 'endpoint="' in text and 'status="' in text and 'method="' in text
    assert requests.get(f"{BASE_URL}/metrics", timeout=10).status_code == 404


def test_the_request_id_travels_to_the_worker_log(api_key: str) -> None:
    rid = f"e2e-{uuid.uuid4().hex}"
    create_article(api_key, title="Traced", headers={"X-Request-ID": rid})
    wait_until(
        lambda: rid in compose("logs", "--no-color", "--since", "2m", "worker").stdout,
        timeout=20,
        interval=0.5,
        message="request id in the worker's logs",
    )
    lines = [
        line for line in compose("logs", "--no-color", "--since", "2m", "worker").stdout.splitlines() if rid in line
    ]
    assert any('"task_name": "articles.process"' in line for line in lines), lines[:3]


def test_ops_is_for_administrators_only(stack: str) -> None:
    with requests.Session() as anonymous:
        response = anonymous.get(f"{BASE_URL}/ops", allow_redirects=False, timeout=10)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    user, admin = (f"e2e-{uuid.uuid4().hex[:12]}@example.com" for _ in range(2))
    create_user(user)
    create_user(admin, admin=True)
    with requests.Session() as browser:
        login(browser, user)
        assert browser.get(f"{BASE_URL}/ops", timeout=10).status_code == 403
    with requests.Session() as browser:
        login(browser, admin)
        page = browser.get(f"{BASE_URL}/ops", timeout=10)
        assert page.status_code == 200
        for replica in hostnames("web"):
            assert replica in page.text, f"replica {replica} missing from /ops"
        for worker in hostnames("worker"):
            assert worker in page.text, f"worker {worker} missing from /ops"
        assert "hit ratio" in page.text and "replica lag" in page.text


def test_tasks_keep_running_when_a_worker_dies(api_key: str) -> None:
    workers = container_ids("worker")
    assert len(workers) >= 2, "needs two workers"
    subprocess.run(["docker", "kill", workers[0]], check=True, capture_output=True)
    try:
        article = create_article(api_key, title="Processed despite a dead worker")

        def ready() -> bool:
            url = f"{BASE_URL}/api/v1/articles/{article['id']}"
            return requests.get(url, headers=bearer(api_key), timeout=10).json()["status"] == "ready"

        wait_until(ready, timeout=15, interval=0.25, message="processed by the surviving worker")
    finally:
        scale(len(container_ids("web")), len(workers))  # bring the killed worker back
