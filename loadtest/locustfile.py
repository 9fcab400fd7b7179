"""Newsdesk under realistic load: who uses the site, and how.

    make loadtest USERS=50 SPAWN_RATE=10 DURATION=60s      # headless, HTML + CSV report
    docker compose --profile loadtest up --scale locust-worker=2   # web UI on 127.0.0.1:8089

Three kinds of users, by weight (of ten users, eight read, one writes, one is a program):

* ``Reader``: anonymous; the home page, older pages, article pages (mostly front-page
  articles) and /popular. Served from the shared cache: most of the site's traffic.
* ``Author``: registers or logs in through the HTML forms (CSRF token from the form, the
  session cookie kept), writes articles, edits them, deletes the oldest beyond a few, reads
  their own (uncached, read-your-writes) pages, and now and then logs out and in again.
* ``ApiClient``: signs in like an author once, creates an API key on the account page,
  then uses only the key: lists, reads and publishes articles through /api/v1.

Credentials need no manual step: each simulated author or API client registers its own
account through the public form on its first run (``loadtest-<role>-w<worker>-<n>@loadtest.invalid``,
password ``LOADTEST_PASSWORD``) and logs in to it on later runs, so the number of accounts
stays at the largest number of such users ever run. Registration is tried before login, so
no login attempt fails and the failed-login rate limit is never touched. API clients create
one key per start (it is shown once, on the page that creates it).

Every request is named by its route (``/articles/[id]``, ``/?page=[n]``), not its URL, so
the statistics have one row per route and method. The site must send cookies over plain
HTTP (``SESSION_COOKIE_SECURE=false``, as in .env) unless the target is HTTPS.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from gevent.lock import Semaphore
from locust import FastHttpUser, between, task
from locust.exception import StopUser

#: The stack's nginx, as seen from the compose network (override with --host).
DEFAULT_HOST = os.environ.get("LOADTEST_HOST", "http://nginx:8080")
PASSWORD = os.environ.get("LOADTEST_PASSWORD") or "newsdesk-loadtest-password"
EMAIL_DOMAIN = "loadtest.invalid"
#: Display names of the load-test accounts start with this (readers skip their articles).
NAME_PREFIX = "Load Test"
#: Articles per simulated author or API client kept alive; older ones are deleted.
KEEP_OWN = 5
#: The site's page size (app/blueprints/pages/views.py PER_PAGE).
PER_PAGE = 20

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_NEW_KEY = re.compile(r'id="new-api-key">\s*([^<\s]+)\s*<')
_ARTICLE_PATH = re.compile(r"/articles/(\d+)(?:[/?#]|$)")
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_ACCOUNT_NUMBERS = {"author": itertools.count(), "api": itertools.count()}

WORDS = (
    "council",
    "harbour",
    "budget",
    "rail",
    "energy",
    "storm",
    "archive",
    "museum",
    "clinic",
    "vaccine",
    "market",
    "wage",
    "tariff",
    "league",
    "stadium",
    "festival",
    "reservoir",
    "drought",
    "turbine",
    "battery",
    "satellite",
    "library",
    "election",
    "court",
    "inquiry",
    "report",
    "survey",
    "forecast",
    "strike",
    "merger",
    "startup",
    "campus",
    "orchestra",
)


def csrf_token_in(html: str) -> str | None:
    match = _CSRF.search(html)
    return (match.group(1) or match.group(2)) if match else None


def article_id_in(location: str | None) -> int | None:
    match = _ARTICLE_PATH.search(location or "")
    return int(match.group(1)) if match else None


def fake_title() -> str:
    return f"Load test: {' '.join(random.sample(WORDS, 4))} {random.randint(1, 99_999)}".capitalize()


def fake_body() -> str:
    paragraphs = []
    for _ in range(random.randint(2, 4)):
        sentences = [" ".join(random.choices(WORDS, k=random.randint(8, 16))).capitalize() + "." for _ in range(3)]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


class Catalog:
    """The articles readers follow links to: the newest hundred that no load-test user wrote.

    One per process, refreshed every ``REFRESH_SECONDS`` by whichever user finds it stale
    (through the public, cached API list); the others keep using the previous copy meanwhile.
    Load-test articles are left out because their writers delete them: a reader holding an
    old link would get a 404 that says nothing about the site.
    """

    REFRESH_SECONDS = 60.0

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pages = 1
        self.fetched_at = -math.inf
        self._lock = Semaphore()

    def refresh_if_stale(self, client: Any) -> None:
        if time.monotonic() - self.fetched_at < self.REFRESH_SECONDS:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            with client.get("/api/v1/articles?per_page=100", name="/api/v1/articles", catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"article list answered {resp.status_code}")
                    return
                listing = resp.json()
            self.ids = [
                item["id"]
                for item in listing["items"]
                if not str(item["author"]["display_name"]).startswith(NAME_PREFIX)
            ]
            self.pages = max(1, math.ceil(listing["total"] / PER_PAGE))
            self.fetched_at = time.monotonic()
        finally:
            self._lock.release()

    def pick(self) -> int | None:
        """An article id: four times in five one of the front page's, else an older one."""
        if not self.ids:
            return None
        front = self.ids[:PER_PAGE]
        return random.choice(front if random.random() < 0.8 else self.ids)


CATALOG = Catalog()


class SiteUser(FastHttpUser):
    """What every kind of user shares: the target, forms with their CSRF token, an account."""

    abstract = True
    host = DEFAULT_HOST

    # --- forms -----------------------------------------------------------------------------

    def open_form(self, path: str, name: str) -> str | None:
        """GET a page with a form; its CSRF token, or None (the request is marked failed)."""
        with self.client.get(path, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"form page answered {resp.status_code}")
                return None
            token = csrf_token_in(resp.text)
            if token is None:
                resp.failure("no csrf_token in the form")
            return token

    def submit(self, path: str, name: str, fields: dict[str, str], expect: tuple[int, ...] = (302, 303)) -> Any:
        """POST a form without following the redirect; a status outside ``expect`` is a failure."""
        with self.client.post(
            path, data=urlencode(fields), headers=_FORM, name=name, allow_redirects=False, catch_response=True
        ) as resp:
            if resp.status_code not in expect:
                resp.failure(f"form answered {resp.status_code}, expected {'/'.join(map(str, expect))}")
            return resp

    # --- accounts --------------------------------------------------------------------------

    def account_email(self, role: str) -> str:
        worker = getattr(self.environment.runner, "worker_index", 0)
        return f"loadtest-{role}-w{worker}-{next(_ACCOUNT_NUMBERS[role])}@{EMAIL_DOMAIN}"

    def register(self, email: str, display_name: str) -> bool | None:
        """True: created and logged in. False: the email is taken. None: the form failed."""
        token = self.open_form("/register", "/register")
        if token is None:
            return None
        fields = {"csrf_token": token, "email": email, "display_name": display_name, "password": PASSWORD}
        with self.client.post(
            "/register",
            data=urlencode(fields),
            headers=_FORM,
            name="/register",
            allow_redirects=False,
            catch_response=True,
        ) as resp:
            if resp.status_code in (302, 303):
                return True
            if resp.status_code == 422 and "already exists" in resp.text:
                resp.success()  # the account from an earlier run: log in instead
                return False
            resp.failure(f"registration answered {resp.status_code}")
            return None

    def log_in(self, email: str) -> bool:
        token = self.open_form("/login", "/login")
        if token is None:
            return False
        resp = self.submit("/login", "/login", {"csrf_token": token, "email": email, "password": PASSWORD})
        return resp.status_code in (302, 303)

    def sign_in(self, role: str) -> None:
        """Log in to this user's account (``self.email``), registering it first if it does not exist yet."""
        email = self.account_email(role)
        number = email.split("@")[0].removeprefix(f"loadtest-{role}-")
        display_name = f"{NAME_PREFIX} {role.capitalize()} {number}"
        outcome = self.register(email, display_name)
        if outcome is False:  # the account from an earlier run
            if self.log_in(email):
                outcome = True
            else:
                # It exists with another password (LOADTEST_PASSWORD changed): use a new account.
                email = f"loadtest-{role}-{uuid.uuid4().hex[:12]}@{EMAIL_DOMAIN}"
                outcome = self.register(email, display_name)
        if not outcome:
            raise StopUser()
        self.email = email


class Reader(SiteUser):
    """An anonymous reader: the front page, an article or two, sometimes older pages or /popular."""

    weight = 8
    wait_time = between(1, 4)

    def on_start(self) -> None:
        CATALOG.refresh_if_stale(self.client)

    @task(4)
    def home(self) -> None:
        self.client.get("/", name="/")

    @task(2)
    def older_page(self) -> None:
        last = min(CATALOG.pages, 10)
        if last < 2:
            return self.home()
        self.client.get(f"/?page={random.randint(2, last)}", name="/?page=[n]")

    @task(8)
    def article(self) -> None:
        CATALOG.refresh_if_stale(self.client)
        article_id = CATALOG.pick()
        if article_id is None:
            return self.home()
        self.client.get(f"/articles/{article_id}", name="/articles/[id]")

    @task(2)
    def popular(self) -> None:
        self.client.get("/popular", name="/popular")


class Author(SiteUser):
    """A logged-in writer: writes, edits and rereads their articles through the HTML forms."""

    weight = 1
    wait_time = between(2, 6)

    def on_start(self) -> None:
        self.own: list[int] = []
        self.sign_in("author")
        self.write()

    @task(2)
    def write(self) -> None:
        token = self.open_form("/write", "/write")
        if token is None:
            return
        resp = self.submit("/write", "/write", {"csrf_token": token, "title": fake_title(), "body": fake_body()})
        created = article_id_in(resp.headers.get("Location")) if resp.status_code in (302, 303) else None
        if created is not None:
            self.own.append(created)
        while len(self.own) > KEEP_OWN:
            self.delete(self.own.pop(0))

    @task(3)
    def edit(self) -> None:
        if not self.own:
            return self.write()
        article_id = random.choice(self.own)
        token = self.open_form(f"/articles/{article_id}/edit", "/articles/[id]/edit")
        if token is None:
            return
        fields = {"csrf_token": token, "title": fake_title(), "body": fake_body()}
        self.submit(f"/articles/{article_id}/edit", "/articles/[id]/edit", fields)

    def delete(self, article_id: int) -> None:
        token = self.open_form(f"/articles/{article_id}/edit", "/articles/[id]/edit")
        if token is not None:
            self.submit(f"/articles/{article_id}/delete", "/articles/[id]/delete", {"csrf_token": token})

    @task(2)
    def reread(self) -> None:
        if not self.own:
            return self.home()
        self.client.get(f"/articles/{random.choice(self.own)}", name="/articles/[id]")

    @task(2)
    def home(self) -> None:
        self.client.get("/", name="/")

    @task(1)
    def account(self) -> None:
        self.client.get("/account", name="/account")

    @task(1)
    def log_out_and_in(self) -> None:
        token = self.open_form("/account", "/account")
        if token is None:
            return
        self.submit("/logout", "/logout", {"csrf_token": token})
        if not self.log_in(self.email):
            raise StopUser()


class ApiClient(SiteUser):
    """A program with an API key: lists, reads and publishes articles through /api/v1."""

    weight = 1
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.own: list[int] = []
        self.sign_in("api")
        token = self.open_form("/account", "/account")
        if token is None:
            raise StopUser()
        key_name = f"locust {time.strftime('%Y-%m-%d %H:%M:%S')}"
        resp = self.submit("/account/keys", "/account/keys", {"csrf_token": token, "name": key_name}, expect=(200,))
        match = _NEW_KEY.search(resp.text or "") if resp.status_code == 200 else None
        if match is None:
            raise StopUser()
        self.auth = {"Authorization": f"Bearer {match.group(1)}"}
        self.client.cookiejar.clear()  # from now on the key alone identifies this client
        self.publish()

    @task(4)
    def list_articles(self) -> None:
        page = random.randint(1, max(1, min(CATALOG.pages, 10)))
        self.client.get(f"/api/v1/articles?page={page}", headers=self.auth, name="/api/v1/articles")

    @task(5)
    def read_article(self) -> None:
        CATALOG.refresh_if_stale(self.client)
        article_id = random.choice(self.own) if self.own and random.random() < 0.2 else CATALOG.pick()
        if article_id is None:
            return self.list_articles()
        self.client.get(f"/api/v1/articles/{article_id}", headers=self.auth, name="/api/v1/articles/[id]")

    @task(1)
    def popular(self) -> None:
        self.client.get("/api/v1/articles/popular", headers=self.auth, name="/api/v1/articles/popular")

    @task(1)
    def publish(self) -> None:
        article = {"title": fake_title(), "body": fake_body()}
        with self.client.post(
            "/api/v1/articles", json=article, headers=self.auth, name="/api/v1/articles", catch_response=True
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"publish answered {resp.status_code}")
                return
            self.own.append(resp.json()["id"])
        while len(self.own) > KEEP_OWN:
            oldest = self.own.pop(0)
            self.client.delete(f"/api/v1/articles/{oldest}", headers=self.auth, name="/api/v1/articles/[id]")
