"""What the benchmark learns from the site itself, through nginx, before it measures: a logged-in
session (the login form with its CSRF token) and the URL of a deep page of the API list
(reached by following its ``next`` links, as a client would).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from typing import Any

from tools.shell import CommandError, http_get

CSRF_FIELD = "csrf_token"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect as it is: the login's 302 carries the session cookie to keep."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def send(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, Message, bytes]:
    """GET (or with ``data``, POST a form to) ``url`` without following redirects."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


class InputValue(HTMLParser):
    """The value of the first ``<input name=...>`` of a page."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        fields = dict(attrs)
        if tag == "input" and fields.get("name") == self.name and self.value is None:
            self.value = fields.get("value") or ""


def input_value(html: str, name: str) -> str | None:
    parser = InputValue(name)
    parser.feed(html)
    return parser.value


def cookies(headers: Message, jar: dict[str, str]) -> dict[str, str]:
    """``jar`` updated with the response's Set-Cookie headers (name=value only; attributes do not matter here)."""
    for header in headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0].strip()
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def login(base_url: str, email: str, password: str) -> str:
    """Log in through the form (GET /login, its CSRF token, POST); the Cookie header of the session."""
    status, headers, body = send(f"{base_url}/login")
    token = input_value(body.decode("utf-8", "replace"), CSRF_FIELD)
    if status != 200 or token is None:
        raise CommandError(f"GET /login answered {status} without a {CSRF_FIELD} field")
    jar = cookies(headers, {})
    form = {CSRF_FIELD: token, "email": email, "password": password}
    status, headers, _ = send(f"{base_url}/login", form, {"Cookie": cookie_header(jar)})
    if status not in (302, 303):
        raise CommandError(f"logging in as {email} answered {status}, not a redirect")
    cookie = cookie_header(cookies(headers, jar))
    # /account needs a login: a redirect (to /login) would mean the session did not stick.
    status, _, _ = send(f"{base_url}/account", headers={"Cookie": cookie})
    if status != 200:
        raise CommandError(f"the session from logging in as {email} is not logged in (/account: {status})")
    return cookie


@dataclass(frozen=True)
class DeepPage:
    """A page of the API list, reached from the first by ``follows`` next links, ``rows_before`` rows deep."""

    path: str
    rows_before: int
    follows: int
    method: str  # "cursor" (the API's next links) or "page" (page=N+1, for an API without them)


def local_path(url: str) -> str:
    """The path and query of ``url`` (the API's next links are absolute, with the host it was asked by)."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def next_page(data: dict[str, Any], path: str) -> tuple[str | None, str]:
    """The path of the page after ``path``, and how it was found: the ``next`` link, or the page number
    plus one where the API has no ``next`` field (before cursors; OFFSET pagination)."""
    if "next" in data:
        return (local_path(data["next"]) if data["next"] else None), "cursor"
    page, pages = data.get("page"), data.get("pages")
    if not isinstance(page, int) or not isinstance(pages, int) or page >= pages:
        return None, "page"
    parts = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["page"] = str(page + 1)
    return f"{parts.path}?{urllib.parse.urlencode(query)}", "page"


def deep_page(base_url: str, first: str, headers: dict[str, str], most_follows: int) -> DeepPage:
    """Follow the list's next links from ``first``, at most ``most_follows`` times: the deepest page
    that has items (at 1,000 articles, the last page; at 1,000,000, the page ``most_follows`` pages in)."""

    def get(path: str) -> dict[str, Any]:
        status, _, body = http_get(f"{base_url}{path}", headers, timeout=60)
        if status != 200:
            raise CommandError(f"GET {path} answered {status}: {body[:300]!r}")
        data: dict[str, Any] = json.loads(body)
        return data

    path, data = first, get(first)
    rows_before, follows, method = 0, 0, "cursor"
    while follows < most_follows:
        following, method = next_page(data, path)
        if following is None:
            break
        following_data = get(following)
        if not following_data.get("items"):
            break
        rows_before += len(data["items"])
        path, data, follows = following, following_data, follows + 1
    return DeepPage(path, rows_before, follows, method)
