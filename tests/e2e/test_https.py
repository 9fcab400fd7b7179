"""HTTPS through nginx: HTTP/2, modern TLS, HSTS, Secure cookies; plain HTTP keeps working."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.stack import BASE_URL, HTTPS_URL, LOCAL_CA, setting


@pytest.fixture(scope="module")
def ca() -> str:
    if setting("TLS_CERT", ""):
        pytest.skip("TLS_CERT names a certificate of its own; these tests check make up's local one")
    assert LOCAL_CA.is_file(), "make up creates tls/ca.pem (scripts/ensure-tls.sh)"
    return str(LOCAL_CA)


def handshake(ca: str, **context_options: object) -> tuple[str | None, str | None]:
    """(ALPN protocol, TLS version) nginx agrees to with a client offering h2 and HTTP/1.1."""
    context = ssl.create_default_context(cafile=ca)
    for name, value in context_options.items():
        setattr(context, name, value)
    context.set_alpn_protocols(["h2", "http/1.1"])
    url = urlsplit(HTTPS_URL)
    with (
        socket.create_connection((url.hostname, url.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as tls,
    ):
        return tls.selected_alpn_protocol(), tls.version()


def test_https_negotiates_http2_over_tls13_with_a_certificate_for_localhost(stack: str, ca: str) -> None:
    assert handshake(ca) == ("h2", "TLSv1.3")


def test_tls12_clients_are_served_too(stack: str, ca: str) -> None:
    assert handshake(ca, maximum_version=ssl.TLSVersion.TLSv1_2) == ("h2", "TLSv1.2")


def test_https_pages_carry_hsts_and_plain_http_ones_do_not(stack: str, ca: str) -> None:
    secure = requests.get(HTTPS_URL + "/", verify=ca, timeout=10)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert int(secure.headers["Strict-Transport-Security"].removeprefix("max-age=").split(";")[0]) >= 31536000
    plain = requests.get(BASE_URL + "/", timeout=10)
    assert plain.status_code == 200  # HTTP keeps working by default (HTTPS_ONLY=false)
    assert "Strict-Transport-Security" not in plain.headers


def test_a_session_cookie_set_over_https_is_secure(stack: str, ca: str) -> None:
    with requests.Session() as browser:
        response = browser.get(HTTPS_URL + "/login", verify=ca, timeout=10)
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "; Secure" in cookie and "HttpOnly" in cookie


def test_static_files_from_nginx_carry_hsts_and_nosniff(stack: str, ca: str) -> None:
    page = requests.get(HTTPS_URL + "/", verify=ca, timeout=10).text
    stylesheet = page.split('href="/static/', 1)[1].split('"', 1)[0]
    response = requests.get(f"{HTTPS_URL}/static/{stylesheet}", verify=ca, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" in response.headers
    assert "immutable" in response.headers["Cache-Control"]


@pytest.mark.parametrize("method", ["TRACE", "BREW"])
def test_unsupported_methods_get_a_problem_with_allow(stack: str, method: str) -> None:
    response = requests.request(method, BASE_URL + "/api/v1/articles", timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 405
    assert "GET" in response.headers["Allow"] and "TRACE" not in response.headers["Allow"]
