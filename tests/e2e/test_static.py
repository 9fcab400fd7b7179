"""nginx does nginx's work: static files under content-hashed names straight from the `static`
volume with a year-long cache (the replicas never see those requests), anything else under
/static/ passed on to the app, and text answers gzipped for clients that accept it."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import requests

from tests.e2e.stack import BASE_URL

TIMEOUT = 10
IMMUTABLE = "public, max-age=31536000, immutable"
STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)">')
HASHED_STYLESHEET = re.compile(r"/static/css/site\.[0-9a-f]{12}\.css")
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def stylesheet_of(html: str) -> str:
    match = STYLESHEET.search(html)
    assert match, "no stylesheet link in the page"
    return match.group(1)


def assert_served_by_nginx(response: requests.Response) -> None:
    assert response.status_code == 200, response.url
    assert response.headers.get("Cache-Control") == IMMUTABLE, response.headers
    assert "X-Served-By" not in response.headers, "a replica answered: the file is not in nginx's volume"


def test_pages_link_a_hashed_stylesheet_that_nginx_serves_with_a_year_long_cache(
    http: requests.Session, stack: str
) -> None:
    page = http.get(f"{BASE_URL}/", timeout=TIMEOUT)
    assert page.status_code == 200
    href = stylesheet_of(page.text)
    assert HASHED_STYLESHEET.fullmatch(href), href

    css = http.get(BASE_URL + href, timeout=TIMEOUT)
    assert_served_by_nginx(css)
    assert css.headers["Content-Type"].startswith("text/css")

    # The plain name is not in the volume: the app serves it (without the immutable promise).
    plain = http.get(f"{BASE_URL}/static/css/site.css", timeout=TIMEOUT)
    assert plain.status_code == 200 and "X-Served-By" in plain.headers
    assert plain.headers.get("Cache-Control") != IMMUTABLE
    assert plain.content == css.content


def test_the_api_docs_load_hashed_swagger_ui_files_from_nginx(http: requests.Session, stack: str) -> None:
    docs = http.get(f"{BASE_URL}/api/v1/docs", timeout=TIMEOUT)
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert len(assets) == 4, assets  # Swagger UI's stylesheet and two scripts, and ours that starts it
    for asset in assets:
        assert re.fullmatch(r"/static/(vendor/swagger-ui|js)/[\w.-]+\.[0-9a-f]{12}\.(css|js)", asset), asset
        assert_served_by_nginx(http.get(urljoin(f"{BASE_URL}/api/v1/docs", asset), timeout=TIMEOUT))


def test_an_unknown_static_path_falls_back_to_the_app(http: requests.Session, stack: str) -> None:
    for path in ("/static/css/site.000000000000.css", "/static/no/such/file.js", "/static/css/"):
        response = http.get(BASE_URL + path, timeout=TIMEOUT)
        assert response.status_code == 404, (path, response.status_code)
        assert "X-Served-By" in response.headers, f"{path}: the app's 404, not nginx's"
        assert response.headers.get("Cache-Control") != IMMUTABLE


def test_text_answers_are_gzipped_for_clients_that_accept_it(http: requests.Session, stack: str) -> None:
    page = http.get(f"{BASE_URL}/", headers=GZIP, timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers.get("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in page.headers.get("Vary", "")
    assert "</html>" in page.text  # requests decompressed it

    css = http.get(BASE_URL + stylesheet_of(page.text), headers=GZIP, timeout=TIMEOUT)
    assert css.headers.get("Content-Encoding") == "gzip", "static text is compressed too"
    api = http.get(f"{BASE_URL}/api/v1/articles", headers=GZIP, timeout=TIMEOUT)
    assert api.status_code == 200 and api.headers.get("Content-Encoding") == "gzip"

    plain = http.get(f"{BASE_URL}/", headers=IDENTITY, timeout=TIMEOUT)
    assert "Content-Encoding" not in plain.headers, "only for clients that ask"
    tiny = http.get(f"{BASE_URL}/healthz", headers=GZIP, timeout=TIMEOUT)
    assert "Content-Encoding" not in tiny.headers, "a few bytes are not worth compressing"
