"""The server-rendered pages end to end, through nginx, as a browser uses them: HTML forms
with their CSRF tokens, one server-side session seen by every replica, the author's rights
over an article, and API keys shown exactly once.

Every user is new (a uuid in the email), so the tests can run against a stack in any state.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.e2e.stack import BASE_URL
from tests.polling import wait_until

TIMEOUT = 10
#: nd_<8 hex>_<token_urlsafe(32)>, see app/services/keys.py.
API_KEY = re.compile(r"(?<![A-Za-z0-9_-])nd_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")
SERVED_BY = re.compile(r'<code class="served-by">([^<]+)</code>')


# --- a minimal browser: cookies, forms and their hidden fields


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class FormParser(HTMLParser):
    """Every <form> of a page with the names and values of its inputs and textareas."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(action=attr.get("action", ""), method=attr.get("method", "get").lower())
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and attr.get("name"):
            self._form.fields[attr["name"]] = attr.get("value", "")
        elif self._form is not None and tag == "textarea" and attr.get("name"):
            self._textarea = attr["name"]
            self._form.fields[self._textarea] = ""

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea" and self._form is not None and self._textarea is not None:
            # As in a browser: one newline right after <textarea> is not part of the value.
            value = self._form.fields[self._textarea]
            self._form.fields[self._textarea] = re.sub(r"\A\r?\n", "", value)
            self._textarea = None


def forms_of(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


class Browser:
    """One user agent: its own cookie jar (so its own session) and the forms it can submit."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def get(self, path: str, **kwargs: object) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.http.get(BASE_URL + path, timeout=TIMEOUT, **kwargs)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(BASE_URL + path, data=data, timeout=TIMEOUT, allow_redirects=False)

    def form(self, page: str, action: str) -> Form:
        """The form on ``page`` that posts to the path ``action`` (its query string ignored)."""
        response = self.get(page)
        assert response.status_code == 200, f"GET {page}: {response.status_code}"
        page_url = BASE_URL + page
        for form in forms_of(response.text):
            if urlsplit(urljoin(page_url, form.action)).path == action and form.method == "post":
                assert form.fields.get("csrf_token"), f"the form for {action} on {page} has no csrf_token"
                return form
        raise AssertionError(f"no POST form for {action} on {page}")

    def submit(self, page: str, action: str, **values: str) -> requests.Response:
        """Fill in the form for ``action`` found on ``page`` (hidden fields included) and send it."""
        form = self.form(page, action)
        target = urljoin(BASE_URL + page, form.action).removeprefix(BASE_URL)
        return self.post(target, {**form.fields, **values})

    def csrf_token(self, page: str = "/account", action: str = "/account/keys") -> str:
        return self.form(page, action).fields["csrf_token"]

    def close(self) -> None:
        self.http.close()


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    password: str


def new_account() -> Account:
    tag = uuid.uuid4().hex[:12]
    return Account(email=f"e2e-pages-{tag}@example.test", name=f"E2E Writer {tag}", password=f"pw-{uuid.uuid4().hex}")


def location(response: requests.Response) -> str:
    """The redirect target as a path on the site."""
    return urlsplit(urljoin(BASE_URL + "/", response.headers.get("Location", ""))).path


def register(browser: Browser, account: Account) -> None:
    response = browser.submit(
        "/register", "/register", email=account.email, display_name=account.name, password=account.password
    )
    assert response.status_code == 302, f"registration failed ({response.status_code}): {response.text[:2000]}"


def login(browser: Browser, account: Account) -> requests.Response:
    return browser.submit("/login", "/login", email=account.email, password=account.password)


def logout(browser: Browser) -> requests.Response:
    return browser.submit("/", "/logout")


def write_article(browser: Browser, title: str, body: str = "First paragraph.\n\nSecond paragraph.") -> int:
    response = browser.submit("/write", "/write", title=title, body=body)
    assert response.status_code == 302, f"publishing failed ({response.status_code}): {response.text[:2000]}"
    match = re.fullmatch(r"/articles/(\d+)", location(response))
    assert match, response.headers.get("Location")
    return int(match.group(1))


def assert_shows_account(response: requests.Response, account: Account) -> None:
    assert response.status_code == 200, f"{response.status_code} {response.headers.get('Location')}"
    assert account.email in response.text and account.name in response.text


@pytest.fixture
def browser(stack: str) -> Browser:
    b = Browser()
    yield b
    b.close()


@pytest.fixture
def author(browser: Browser) -> Account:
    """A new account, registered (and so logged in) in ``browser``."""
    account = new_account()
    register(browser, account)
    return account


# --- sessions


def test_one_session_is_valid_on_every_replica(browser: Browser) -> None:
    account = new_account()
    register(browser, account)
    assert_shows_account(browser.get("/account"), account)  # the very next request after registering
    assert logout(browser).status_code == 302
    response = login(browser, account)
    assert response.status_code == 302, response.text[:2000]

    replicas: list[str] = []
    for _ in range(30):
        response = browser.get("/account")
        assert_shows_account(response, account)
        served_by = response.headers["X-Served-By"]
        assert SERVED_BY.findall(response.text) == [served_by], "the footer names the replica that served the page"
        replicas.append(served_by)
    assert len(set(replicas)) >= 2, f"all 30 requests went to {set(replicas)}; is the stack up with WEB>=2?"


def test_login_failure_is_one_generic_message(browser: Browser, author: Account) -> None:
    logout(browser)
    wrong_password = browser.submit("/login", "/login", email=author.email, password="not-the-password")
    unknown_email = browser.submit("/login", "/login", email=f"nobody-{uuid.uuid4().hex}@example.test", password="x")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 422
        assert "Incorrect email or password." in response.text
    assert location(browser.get("/account")) == "/login"


def test_logout_deletes_the_session(browser: Browser, author: Account) -> None:
    cookie = browser.http.cookies.get("session")
    assert cookie, "registration set no session cookie"
    response = logout(browser)
    assert response.status_code == 302
    response = browser.get("/account")
    assert response.status_code == 302 and location(response) == "/login"
    # The old cookie, replayed by anyone who kept it, no longer opens a session.
    response = requests.get(BASE_URL + "/account", cookies={"session": cookie}, timeout=TIMEOUT, allow_redirects=False)
    assert response.status_code == 302 and location(response) == "/login"


def test_login_honours_only_local_next(browser: Browser, author: Account) -> None:
    logout(browser)
    response = browser.get("/account")
    assert location(response) == "/login"
    page = "/login?next=/account"
    form = browser.form(page, "/login")
    response = browser.post(form.action, {**form.fields, "email": author.email, "password": author.password})
    assert response.status_code == 302 and location(response) == "/account"

    logout(browser)
    form = browser.form("/login?next=//evil.example/", "/login")
    response = browser.post(form.action, {**form.fields, "email": author.email, "password": author.password})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).netloc in ("", urlsplit(BASE_URL).netloc)


# --- CSRF


def test_login_without_csrf_token_is_refused(browser: Browser, author: Account) -> None:
    logout(browser)
    browser.get("/login")  # a session exists, as for a real visitor; only the token is missing
    response = browser.post("/login", {"email": author.email, "password": author.password})
    assert response.status_code == 400
    assert "expired" in response.text
    assert location(browser.get("/account")) == "/login", "a refused login must not log anyone in"
    # The same credentials with the form's token are accepted: the token was the only problem.
    assert login(browser, author).status_code == 302
    assert browser.get("/account").status_code == 200


def test_write_without_csrf_token_is_refused_and_writes_nothing(browser: Browser, author: Account) -> None:
    title = f"Forged {uuid.uuid4().hex}"
    response = browser.post("/write", {"title": title, "body": "Should never be stored."})
    assert response.status_code == 400
    response = browser.post("/write", {"title": title, "body": "Wrong token.", "csrf_token": "not-a-token"})
    assert response.status_code == 400
    # The author reads their own writes (read-your-writes): had it been stored, it would be listed.
    assert title not in browser.get("/account").text
    # Control: the same article through the form is stored and listed.
    write_article(browser, title)
    assert title in browser.get("/account").text


def test_bad_input_is_shown_next_to_the_field(browser: Browser, author: Account) -> None:
    response = browser.submit("/write", "/write", title="   ", body="Body")
    assert response.status_code == 422
    assert 'id="title-error"' in response.text and 'id="body-error"' not in response.text


# --- articles


def test_only_the_author_can_edit_or_delete(browser: Browser, author: Account) -> None:
    title = f"Original {uuid.uuid4().hex}"
    article_id = write_article(browser, title)
    page = f"/articles/{article_id}"
    edit = f"{page}/edit"
    response = browser.get(page)
    assert response.status_code == 200 and title in response.text
    assert f'href="{edit}"' in response.text, "the author sees an Edit link"

    edited = f"Edited {uuid.uuid4().hex}"
    response = browser.submit(edit, edit, title=edited)
    assert response.status_code == 302 and location(response) == page
    assert edited in browser.get(page).text

    other = Browser()
    try:
        register(other, new_account())
        assert f'href="{edit}"' not in other.get(page).text
        assert other.get(edit).status_code == 403
        token = other.csrf_token()
        assert other.post(edit, {"csrf_token": token, "title": "Hijacked", "body": "x"}).status_code == 403
        assert other.post(f"{page}/delete", {"csrf_token": token}).status_code == 403
    finally:
        other.close()
    response = browser.get(page)
    assert response.status_code == 200 and edited in response.text and "Hijacked" not in response.text

    response = browser.submit(edit, f"{page}/delete")
    assert response.status_code == 302
    assert browser.get(page).status_code == 404


def test_a_new_article_reaches_anonymous_readers(browser: Browser, author: Account) -> None:
    """Anonymous pages are served from the shared cache; publishing must invalidate it."""
    anonymous = Browser()
    try:
        assert anonymous.get("/").status_code == 200  # fill the cache first
        title = f"Fresh {uuid.uuid4().hex}"
        article_id = write_article(browser, title)
        wait_until(lambda: title in anonymous.get("/").text, timeout=20, message="the home page lists it")
        response = anonymous.get(f"/articles/{article_id}")
        assert response.status_code == 200 and title in response.text
        assert "set-cookie" not in {name.lower() for name in response.headers}, "anonymous reads create no session"
    finally:
        anonymous.close()


OLDER = re.compile(r'<a rel="next" href="(/\?cursor=[^"]+)">Older')


def test_older_pages_follow_a_cursor_and_are_cached_like_the_first(browser: Browser, author: Account) -> None:
    total = requests.get(f"{BASE_URL}/api/v1/articles?per_page=1", timeout=TIMEOUT).json()["total"]
    for n in range(max(1, 21 - total)):  # more than one page (20) of articles
        write_article(browser, f"Paging {n} {uuid.uuid4().hex[:8]}")
    anonymous = Browser()
    try:
        first = anonymous.get("/")
        older = OLDER.search(first.text)
        assert older, "the first page links the older articles by cursor"
        page = anonymous.get(older.group(1).replace("&amp;", "&"))
        assert page.status_code == 200 and "← Newest" in page.text
        sources = [anonymous.get(older.group(1)).headers.get("X-Cache") for _ in range(30)]
        assert "hit" in sources, f"answered from a replica's memory at least once: {sources}"
        assert anonymous.get("/?cursor=forged").status_code == 404
    finally:
        anonymous.close()


def test_a_cached_page_is_revalidated_with_304(stack: str) -> None:
    anonymous = Browser()
    try:
        first = anonymous.get("/")
        assert first.headers["ETag"] and first.headers["Cache-Control"] == "no-cache"
        again = anonymous.get("/", headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.content == b""
    finally:
        anonymous.close()


# --- API keys


def test_api_key_is_shown_once(browser: Browser, author: Account) -> None:
    name = f"script {uuid.uuid4().hex[:8]}"
    response = browser.submit("/account", "/account/keys", name=name)
    assert response.status_code == 200
    assert "no-store" in response.headers.get("Cache-Control", "")
    keys = API_KEY.findall(response.text)
    assert len(keys) == 1, keys
    key = keys[0]

    response = browser.get("/account")
    assert response.status_code == 200 and name in response.text
    assert key not in response.text
    assert not API_KEY.search(response.text), "no full key on a later page"
    assert key[: len("nd_") + 8] in response.text, "the key is still listed by its prefix"


# --- error pages next to the API's problem+json


def test_error_pages_are_html_except_under_api(stack: str) -> None:
    response = requests.get(BASE_URL + f"/no-such-page-{uuid.uuid4().hex}", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html") and "Page not found" in response.text
    response = requests.get(BASE_URL + f"/api/v1/no-such-thing-{uuid.uuid4().hex}", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
