"""The JSON API v1 end to end, through nginx, against the running stack (`make up`).

Accounts and keys are made with the CLI in a web replica (`flask users create`, `flask keys
create`); every account is new (a uuid in its email), so the tests run against a stack in
any state. Requests spread over the web replicas and reads may go to the streaming replica:
the write-then-read loops check that neither ever shows a stale or missing article.

API writes are rate limited per key (API_WRITE_LIMIT: 60/minute by default, 300 in make test), so each test
writes with keys of its own and stays under the limit, except the one that exceeds it.
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.e2e.stack import BASE_URL, flask_cmd, setting

API = BASE_URL + "/api/v1"
TIMEOUT = 10
PROBLEM = "application/problem+json"
ONE_MIB = 1024 * 1024
#: Write-then-read rounds per test run (each round: create, read, edit, read).
ROUNDS = 20


@dataclass(frozen=True)
class Account:
    email: str
    key: str
    key_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def new_account(label: str) -> Account:
    """A new user with one API key, made by the CLI in a web replica."""
    email = f"api-e2e-{label}-{uuid.uuid4().hex[:12]}@example.test"
    flask_cmd(
        "users", "create", "--email", email, "--name", f"API e2e {label}", "--password", secrets.token_urlsafe(18)
    )
    out = flask_cmd("keys", "create", "--email", email, "--name", f"e2e {label}")
    lines = [line.strip() for line in out.strip().splitlines() if line.strip()]
    header = re.search(r"\bkey (\d+)\b", out)
    assert lines and header, f"unexpected output of `flask keys create`: {out!r}"
    assert lines[-1].startswith("nd_"), f"the last line of `flask keys create` is not a key: {out!r}"
    return Account(email=email, key=lines[-1], key_id=int(header.group(1)))


@pytest.fixture
def author(stack: str) -> Account:
    return new_account("author")


@pytest.fixture
def other(stack: str) -> Account:
    return new_account("other")


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; returns its members."""
    where = f"{response.request.method} {response.url}"
    assert response.status_code == status, f"{where}: {response.status_code} {response.text[:500]}"
    assert response.headers.get("Content-Type", "").split(";")[0].strip() == PROBLEM, (
        f"{where}: Content-Type {response.headers.get('Content-Type')!r}: {response.text[:200]}"
    )
    body = response.json()
    assert body["status"] == status, body
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and body["title"], body
    return body


def create(http: requests.Session, account: Account, title: str, body: str = "Body text.") -> dict[str, Any]:
    response = http.post(f"{API}/articles", json={"title": title, "body": body}, headers=account.auth, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    article = response.json()
    assert urlsplit(urljoin(BASE_URL + "/", response.headers["Location"])).path == f"/api/v1/articles/{article['id']}"
    return article


def read(http: requests.Session, article_id: int, account: Account | None = None) -> requests.Response:
    headers = account.auth if account else {}
    return http.get(f"{API}/articles/{article_id}", headers=headers, timeout=TIMEOUT)


def total(http: requests.Session, account: Account) -> int:
    """The number of articles, read with a key (never from the shared cache)."""
    response = http.get(f"{API}/articles", params={"per_page": 1}, headers=account.auth, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["total"]


# --- read your writes ------------------------------------------------------------------------


def test_writes_are_read_back_at_once_by_the_writer_and_by_anonymous_readers(
    http: requests.Session, author: Account
) -> None:
    """Create then read, edit then read, at once: 0 stale or missing answers, with or without a key."""
    run = uuid.uuid4().hex[:8]
    misses: list[str] = []

    def check(stage: str, article_id: int, expected: dict[str, str]) -> None:
        for reader, account in (("author", author), ("anonymous", None)):
            response = read(http, article_id, account)
            if response.status_code != 200:
                misses.append(f"{stage} #{article_id} as {reader}: {response.status_code} {response.text[:120]}")
                continue
            seen = {name: response.json()[name] for name in expected}
            if seen != expected:
                misses.append(f"{stage} #{article_id} as {reader}: stale {seen} != {expected}")
            listing = http.get(
                f"{API}/articles", params={"per_page": 100}, headers=account.auth if account else {}, timeout=TIMEOUT
            )
            listed = {item["id"]: item["title"] for item in listing.json()["items"]}
            if listed.get(article_id) != expected["title"]:
                misses.append(f"{stage} #{article_id} in the listing as {reader}: {listed.get(article_id)!r}")

    for round_ in range(ROUNDS):
        title, body = f"API read-your-writes {run} #{round_}", f"Body {run} #{round_}."
        article = create(http, author, title, body)
        assert (article["title"], article["body"]) == (title, body)
        check("after create", article["id"], {"title": title, "body": body})

        edited = f"{title} (edited)"
        response = http.patch(
            f"{API}/articles/{article['id']}", json={"title": edited}, headers=author.auth, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        assert (response.json()["title"], response.json()["body"]) == (edited, body)
        check("after edit", article["id"], {"title": edited, "body": body})

    assert misses == [], f"{len(misses)} stale or missing reads in {ROUNDS} rounds:\n" + "\n".join(misses)


# --- errors are problems -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """What the error cases act on: an article by ``author``, and keys of every kind."""

    author: Account
    other: Account
    revoked: Account
    article_id: int


@pytest.fixture(scope="module")
def scene(stack: str) -> Scene:
    author, other, revoked = new_account("scene-author"), new_account("scene-other"), new_account("revoked")
    flask_cmd("keys", "revoke", "--email", revoked.email, "--id", str(revoked.key_id))
    with requests.Session() as http:
        article = create(http, author, f"API errors {uuid.uuid4().hex[:8]}")
    return Scene(author=author, other=other, revoked=revoked, article_id=article["id"])


Request = Callable[[requests.Session, Scene], requests.Response]
UNKNOWN_ID = 9_000_000_000_000_000_000  # a valid BIGINT no test will reach


def _post(http: requests.Session, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    return http.post(f"{API}/articles", headers=headers, timeout=TIMEOUT, **kwargs)


ERROR_CASES: dict[str, tuple[int, Request]] = {
    "400 malformed JSON": (
        400,
        lambda http, s: _post(http, {**s.author.auth, "Content-Type": "application/json"}, data=b'{"title": "t",'),
    ),
    "401 no key": (401, lambda http, s: _post(http, {}, json={"title": "t", "body": "b"})),
    "401 unknown key": (
        401,
        lambda http, s: _post(http, {"Authorization": "Bearer nd_00000000_" + "x" * 43}, json={"title": "t"}),
    ),
    "401 revoked key": (401, lambda http, s: _post(http, s.revoked.auth, json={"title": "t", "body": "b"})),
    "401 revoked key reading /me": (
        401,
        lambda http, s: http.get(f"{API}/me", headers=s.revoked.auth, timeout=TIMEOUT),
    ),
    "401 malformed key on a read": (
        401,
        lambda http, s: http.get(f"{API}/articles", headers={"Authorization": "Bearer nope"}, timeout=TIMEOUT),
    ),
    "403 not the author": (
        403,
        lambda http, s: http.patch(
            f"{API}/articles/{s.article_id}", json={"title": "mine now"}, headers=s.other.auth, timeout=TIMEOUT
        ),
    ),
    "404 unknown article": (404, lambda http, s: http.get(f"{API}/articles/{UNKNOWN_ID}", timeout=TIMEOUT)),
    "404 unknown article, with a key": (
        404,
        lambda http, s: http.patch(
            f"{API}/articles/{UNKNOWN_ID}", json={"title": "t"}, headers=s.author.auth, timeout=TIMEOUT
        ),
    ),
    "404 id beyond BIGINT": (404, lambda http, s: http.get(f"{API}/articles/{2**64}", timeout=TIMEOUT)),
    "404 unknown path": (404, lambda http, s: http.get(f"{API}/no-such-thing", timeout=TIMEOUT)),
    "405 wrong method": (405, lambda http, s: http.put(f"{API}/articles", json={}, timeout=TIMEOUT)),
    "413 body over 1 MiB": (
        413,
        lambda http, s: _post(http, s.author.auth, json={"title": "t", "body": "b" * (ONE_MIB + ONE_MIB // 2)}),
    ),
    "415 not JSON": (
        415,
        lambda http, s: _post(http, {**s.author.auth, "Content-Type": "text/plain"}, data=b'{"title": "t"}'),
    ),
    "415 no content type": (415, lambda http, s: _post(http, s.author.auth, data=b'{"title": "t", "body": "b"}')),
    "422 empty title": (422, lambda http, s: _post(http, s.author.auth, json={"title": "", "body": "b"})),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_every_error_is_an_rfc_9457_problem(http: requests.Session, scene: Scene, case: str) -> None:
    status, send = ERROR_CASES[case]
    response = send(http, scene)
    body = assert_problem(response, status)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    if status == 405:
        assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    if status == 422:
        assert body["type"] == "https://newsdesk.dev/problems/validation"
        assert body["errors"] == {"title": ["must not be empty"]}


# --- pagination ----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["per_page=0", "per_page=101", "page=0", "page=-1", "per_page=x"])
def test_pagination_out_of_bounds_is_a_422_problem(http: requests.Session, stack: str, query: str) -> None:
    body = assert_problem(http.get(f"{API}/articles?{query}", timeout=TIMEOUT), 422)
    assert set(body["errors"]) == {query.split("=")[0]}


@pytest.mark.parametrize("per_page", [1, 7, 100])
def test_pages_count_right_and_a_page_beyond_the_last_is_empty(
    http: requests.Session, author: Account, per_page: int
) -> None:
    create(http, author, f"API pagination {uuid.uuid4().hex[:8]}")  # at least one article exists
    first = http.get(f"{API}/articles", params={"per_page": per_page}, headers=author.auth, timeout=TIMEOUT).json()
    count, pages = first["total"], first["pages"]
    assert count >= 1
    assert pages == math.ceil(count / per_page)
    assert (first["page"], first["per_page"], len(first["items"])) == (1, per_page, min(per_page, count))
    if pages + 1 > 10_000:
        pytest.skip(f"{count} articles: page {pages + 1} is beyond the API's page limit")
    beyond = http.get(
        f"{API}/articles", params={"page": pages + 1, "per_page": per_page}, headers=author.auth, timeout=TIMEOUT
    )
    assert beyond.status_code == 200, beyond.text
    assert beyond.json() == {
        "items": [],
        "page": pages + 1,
        "per_page": per_page,
        "total": count,
        "pages": pages,
        "next": None,
    }
    last = http.get(
        f"{API}/articles", params={"page": pages, "per_page": per_page}, headers=author.auth, timeout=TIMEOUT
    ).json()
    assert len(last["items"]) == count - (pages - 1) * per_page


def test_the_next_link_walks_older_articles_like_the_numbered_pages(http: requests.Session, author: Account) -> None:
    for n in range(3):
        create(http, author, f"API cursor {n} {uuid.uuid4().hex[:8]}")
    numbered = [
        [item["id"] for item in read_page(http, author, {"page": page, "per_page": 2})["items"]] for page in (1, 2, 3)
    ]
    walked = []
    response = http.get(f"{API}/articles", params={"per_page": 2}, headers=author.auth, timeout=TIMEOUT)
    for _ in range(3):
        body = response.json()
        walked.append([item["id"] for item in body["items"]])
        assert body["next"], "at least 6 articles exist, so there is a next page"
        assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        response = http.get(urljoin(BASE_URL, body["next"]), headers=author.auth, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        assert (response.json()["page"], response.json()["total"]) == (None, None), "a cursor page has no count"
    assert walked == numbered


def read_page(http: requests.Session, author: Account, params: dict[str, Any]) -> dict[str, Any]:
    response = http.get(f"{API}/articles", params=params, headers=author.auth, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_cursor_that_is_not_ours_is_a_422_problem(http: requests.Session, stack: str) -> None:
    body = assert_problem(http.get(f"{API}/articles?cursor=not-a-cursor", timeout=TIMEOUT), 422)
    assert set(body["errors"]) == {"cursor"}


def test_anonymous_reads_come_from_memory_and_revalidate_with_304(http: requests.Session, stack: str) -> None:
    sources = [http.get(f"{API}/articles?per_page=3", timeout=TIMEOUT).headers.get("X-Cache") for _ in range(40)]
    assert set(sources) <= {"hit", "shared", "miss"} and "hit" in sources, sources
    first = http.get(f"{API}/articles?per_page=3", timeout=TIMEOUT)
    assert first.headers["Cache-Control"] == "no-cache" and "Cookie" in first.headers["Vary"]
    again = http.get(f"{API}/articles?per_page=3", headers={"If-None-Match": first.headers["ETag"]}, timeout=TIMEOUT)
    assert again.status_code == 304 and again.content == b""
    assert "X-Cache" not in http.get(f"{API}/articles?per_page=3", headers=FAKE_AUTH, timeout=TIMEOUT).headers


FAKE_AUTH = {"Authorization": "Bearer nd_not-a-real-key"}


def test_listing_is_newest_first(http: requests.Session, author: Account) -> None:
    older = create(http, author, f"API older {uuid.uuid4().hex[:8]}")
    newer = create(http, author, f"API newer {uuid.uuid4().hex[:8]}")
    items = http.get(f"{API}/articles", params={"per_page": 100}, headers=author.auth, timeout=TIMEOUT).json()["items"]
    ids = [item["id"] for item in items]
    assert ids.index(newer["id"]) < ids.index(older["id"])
    stamps = [datetime.fromisoformat(item["published_at"]) for item in items]
    assert stamps == sorted(stamps, reverse=True)
    assert all("body" not in item for item in items)


# --- authorship, and refusals that write nothing -------------------------------------------------------


def test_only_the_author_may_edit_or_delete(http: requests.Session, author: Account, other: Account) -> None:
    article = create(http, author, f"API authorship {uuid.uuid4().hex[:8]}", "The author's words.")
    url = f"{API}/articles/{article['id']}"

    assert_problem(http.patch(url, json={"title": "Taken over"}, headers=other.auth, timeout=TIMEOUT), 403)
    assert_problem(http.delete(url, headers=other.auth, timeout=TIMEOUT), 403)
    for reader in (author, other, None):
        response = read(http, article["id"], reader)
        assert response.status_code == 200, response.text
        assert (response.json()["title"], response.json()["body"]) == (article["title"], "The author's words.")

    deleted = http.delete(url, headers=author.auth, timeout=TIMEOUT)
    assert deleted.status_code == 204 and deleted.content == b""
    for reader in (author, None):
        assert_problem(read(http, article["id"], reader), 404)
    assert_problem(http.delete(url, headers=author.auth, timeout=TIMEOUT), 404)


def test_refused_writes_change_nothing(http: requests.Session, author: Account, other: Account) -> None:
    article = create(http, author, f"API untouched {uuid.uuid4().hex[:8]}", "Original body.")
    url = f"{API}/articles/{article['id']}"
    before = total(http, author)
    as_json = {**author.auth, "Content-Type": "application/json"}
    keyed: dict[str, Any] = {"headers": author.auth, "timeout": TIMEOUT}
    refused = [
        (422, http.post(f"{API}/articles", json={"title": "", "body": "b"}, headers=author.auth, timeout=TIMEOUT)),
        (422, http.post(f"{API}/articles", json={"title": "t", "body": "b", "views": 9}, **keyed)),
        (422, http.post(f"{API}/articles", json={"title": "t", "body": "b" * 100_001}, **keyed)),
        (422, http.post(f"{API}/articles", json=[{"title": "t", "body": "b"}], **keyed)),
        (400, http.post(f"{API}/articles", data=b'{"title": "t", "body": "b"', headers=as_json, timeout=TIMEOUT)),
        (415, http.post(f"{API}/articles", data={"title": "t", "body": "b"}, **keyed)),  # a form
        # Half valid is refused whole: the title must not change either.
        (422, http.patch(url, json={"title": "Changed", "body": ""}, headers=author.auth, timeout=TIMEOUT)),
        (422, http.patch(url, json={"title": "Changed", "status": "ready"}, headers=author.auth, timeout=TIMEOUT)),
        (422, http.patch(url, json={}, headers=author.auth, timeout=TIMEOUT)),
        (400, http.patch(url, data=b"{title: 'Changed'}", headers=as_json, timeout=TIMEOUT)),
        (415, http.patch(url, data=b'{"title": "Changed"}', headers=author.auth, timeout=TIMEOUT)),
        (403, http.patch(url, json={"title": "Changed"}, headers=other.auth, timeout=TIMEOUT)),
    ]
    for status, response in refused:
        assert_problem(response, status)
    assert total(http, author) == before
    current = read(http, article["id"], author).json()
    assert (current["title"], current["body"]) == (article["title"], "Original body.")


# --- the rest of the surface ---------------------------------------------------------------------


def test_me_describes_the_key_and_its_owner(http: requests.Session, author: Account) -> None:
    response = http.get(f"{API}/me", headers=author.auth, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["email"] == author.email
    assert me["key"]["id"] == author.key_id
    assert author.key.startswith(me["key"]["prefix"] + "_")
    assert author.key not in response.text  # the key itself is never shown again
    assert_problem(http.get(f"{API}/me", timeout=TIMEOUT), 401)


@pytest.mark.parametrize("with_key", [False, True])
def test_popular_is_at_most_ten_by_views(http: requests.Session, author: Account, with_key: bool) -> None:
    response = http.get(f"{API}/articles/popular", headers=author.auth if with_key else {}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) <= 10
    views = [item["views"] for item in items]
    assert views == sorted(views, reverse=True)


def test_openapi_document_and_docs_are_served_without_a_cdn(http: requests.Session, stack: str) -> None:
    spec = http.get(f"{API}/openapi.json", timeout=TIMEOUT)
    assert spec.status_code == 200 and spec.headers["Content-Type"].startswith("application/json")
    assert {"/api/v1/articles", "/api/v1/articles/{article_id}", "/api/v1/me"} <= set(spec.json()["paths"])
    docs = http.get(f"{API}/docs", timeout=TIMEOUT)
    assert docs.status_code == 200, docs.text[:200]
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets
    for asset in assets:
        assert urlsplit(asset).netloc == "", f"{asset} is not served by Newsdesk"
        assert http.get(urljoin(f"{API}/docs", asset), timeout=TIMEOUT).status_code == 200, asset


def write_limit() -> int | None:
    """The stack's API_WRITE_LIMIT as compose gives it (make test sets its own: scripts/test.sh)."""
    match = re.match(r"\s*(\d+)\s*(?:/|per)\s*minute", setting("API_WRITE_LIMIT", "60/minute"))
    return int(match.group(1)) if match else None


def test_exceeding_the_write_limit_is_a_429_problem(http: requests.Session, author: Account) -> None:
    limit = write_limit()
    if limit is None or limit > 300:
        pytest.skip(f"API_WRITE_LIMIT={setting('API_WRITE_LIMIT', '60/minute')!r} is not a small per-minute limit")
    statuses = []
    for _ in range(limit + 1):
        response = http.post(f"{API}/articles", json={"title": ""}, headers=author.auth, timeout=TIMEOUT)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[:limit] == [422] * limit, statuses
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
