"""Rate limits (Flask-Limiter, counters in the `redis` service so they hold across replicas).

* Failed logins: at most LOGIN_FAILURE_LIMIT (default 10/minute) per client address and,
  separately, per account (the email tried). Only failures count (a successful login
  redirects); the next attempt past the limit is answered 429 with Retry-After.
* API writes: at most API_WRITE_LIMIT (default 60/minute) per API key.

If Redis is unreachable the limits are not enforced (errors are swallowed and logged):
throttling abuse must not take the site down with it. A hit is an increment, so the storage's
client never resends a command that may have run (app.redis_clients.counter_client_options):
a dropped connection costs at most an uncounted hit, never one counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.extensions import server_outage
from app.redis_clients import counter_client_options
from app.services.keys import bearer_token, hash_key, looks_like_key

LOGIN_ENDPOINT = "auth.login"
API_BLUEPRINTS = ("api",)
WRITE_METHODS = ["POST", "PATCH", "PUT", "DELETE"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Where the limiter puts its Retry-After (a 429 gets it as Retry-After).
LIMITER_RETRY_AFTER = "X-RateLimit-Retry-After"


def login_account() -> str:
    """The account a login attempt targets: the email, normalised."""
    return "account:" + (request.form.get("email") or "").strip().lower()


def login_client() -> str:
    return "client:" + (get_remote_address() or "unknown")


def api_key_identity() -> str:
    """Limit per API key (hashed; the key itself never reaches Redis), else per address."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None and looks_like_key(token):
        return "apikey:" + hash_key(token)[:32]
    return "client:" + (get_remote_address() or "unknown")


def failed_login(response: object) -> bool:
    """A login that did not succeed: anything but the redirect a successful login answers."""
    return getattr(response, "status_code", 0) not in (301, 302, 303)


def init_limits(app: Flask) -> Limiter:
    """A limiter for this app (one per app, so limits never pile up across app instances)."""
    settings = app.extensions["settings"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.ratelimit_storage_url)
    if settings.ratelimit_storage_url.startswith(("redis://", "rediss://")):
        outage = server_outage(app, settings.ratelimit_storage_url)
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", counter_client_options(settings.redis_retries, outage))
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "newsdesk:limits")
    # The limiter sets Retry-After on every limited response, to the later of the response's own
    # and its window's reset (up to a minute away), even on a 503 whose own says "in 3 s". So it
    # writes its value under another name, and only a 429 gets it as Retry-After.
    app.config.setdefault("RATELIMIT_HEADER_RETRY_AFTER", LIMITER_RETRY_AFTER)

    @app.after_request  # registered before the limiter's hook, so it runs after it
    def retry_after_when_limited(response: Response) -> Response:
        limited = response.headers.get(LIMITER_RETRY_AFTER)
        if response.status_code == 429 and limited is not None:
            response.headers["Retry-After"] = limited
        return response

    limiter = Limiter(key_func=get_remote_address, app=app)
    # Every limit here guards a write; reads skip the limiter's per-request bookkeeping.
    limiter.request_filter(lambda: request.method in SAFE_METHODS)

    login_view: Callable[..., Any] | None = app.view_functions.get(LOGIN_ENDPOINT)
    if login_view is not None:
        # Decorated limits are checked by the wrapper the decorator returns: install it as the view.
        for key_func in (login_client, login_account):
            login_view = limiter.limit(
                settings.login_limit, key_func=key_func, methods=["POST"], deduct_when=failed_login
            )(login_view)
        app.view_functions[LOGIN_ENDPOINT] = login_view
    for name in API_BLUEPRINTS:
        blueprint = app.blueprints.get(name)
        if isinstance(blueprint, Blueprint):
            limiter.limit(settings.api_write_limit, key_func=api_key_identity, methods=WRITE_METHODS)(blueprint)
    return limiter
