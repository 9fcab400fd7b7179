"""Security headers on every response: a strict Content-Security-Policy, nosniff, a referrer policy.

The site's pages load nothing from elsewhere and have no inline script or style (no nonces,
which a page shared through the response cache could not carry), so the policy allows only
this origin's stylesheets and images, no script at all, and no framing. Two exceptions:

- the API docs page (Swagger UI) runs scripts and fetches the OpenAPI document: it gets its
  own policy, still same-origin only (its inline start-up script lives in a static file);
- ``APP_ENV=development`` allows inline scripts and styles for Flask-DebugToolbar, which
  injects them into every page. Production and test use the strict policies.

Flask responses get the headers in an ``after_request`` hook; responses answered from a
process's memory without Flask (app.response_cache) add the same precomputed list. HSTS is
nginx's (it knows whether TLS is in front), not the app's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask, Response, request

from app.config import Settings

CSP = "Content-Security-Policy"
#: The flask-smorest endpoint of the Swagger UI page (OPENAPI_SWAGGER_UI_PATH, app/api/spec.py).
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"

#: Every page, and every API response: nothing but this origin's stylesheets and images, no script.
STRICT_POLICY: Mapping[str, str] = {
    "default-src": "'none'",
    "style-src": "'self'",
    "img-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
#: The Swagger UI page: its scripts, the spec it fetches ("try it out" too), and the icons its
#: stylesheet embeds as data: URLs. It sets styles through the DOM (React), which CSP allows.
DOCS_POLICY: Mapping[str, str] = {
    **STRICT_POLICY,
    "script-src": "'self'",
    "connect-src": "'self'",
    "img-src": "'self' data:",
}
#: APP_ENV=development only: Flask-DebugToolbar injects inline scripts and styles into pages.
DEVELOPMENT_RELAXED: Mapping[str, str] = {
    "script-src": "'self' 'unsafe-inline'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
}


def render_policy(directives: Mapping[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


@dataclass(frozen=True, slots=True)
class SecurityHeaders:
    """The headers of this app's responses: ``default`` for all, ``docs`` for the Swagger UI page."""

    default: tuple[tuple[str, str], ...]
    docs: tuple[tuple[str, str], ...]

    @classmethod
    def for_settings(cls, settings: Settings) -> SecurityHeaders:
        relaxed = DEVELOPMENT_RELAXED if settings.env == "development" else {}
        common = (
            ("X-Content-Type-Options", "nosniff"),
            # The full URL to this site (Flask-WTF checks the Referer of form posts over HTTPS),
            # nothing to any other.
            ("Referrer-Policy", "same-origin"),
        )
        return cls(
            default=((CSP, render_policy({**STRICT_POLICY, **relaxed})), *common),
            docs=((CSP, render_policy({**DOCS_POLICY, **relaxed})), *common),
        )

    def apply(self, response: Response, endpoint: str | None) -> Response:
        """Set the headers on ``response`` (the docs page's when ``endpoint`` is the docs page)."""
        for name, value in self.docs if endpoint == DOCS_ENDPOINT else self.default:
            response.headers[name] = value
        return response


def init_security_headers(app: Flask) -> SecurityHeaders:
    """Stamp the headers on every Flask response; app.response_cache adds ``default`` to its own."""
    headers = app.extensions["security_headers"] = SecurityHeaders.for_settings(app.extensions["settings"])

    @app.after_request
    def stamp_security_headers(response: Response) -> Response:
        return headers.apply(response, request.endpoint)

    return headers
