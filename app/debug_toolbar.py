"""Flask-DebugToolbar, in development only (APP_ENV=development, `make dev`).

The toolbar shows a page's queries, templates, timings, headers and config, so it must never
run in production: it is wired here only when the settings say development, and the package
lives in the image's ``dev`` target (requirements-development.txt), not in the runtime image
that production runs. Redirects pass through as redirects (``DEBUG_TB_INTERCEPT_REDIRECTS``
off): the site's forms redirect after a POST, and an interstitial page at each would get in
the way more than it helps. The toolbar loads its own scripts and styles from
``/_debug_toolbar/static/``; the Content-Security-Policy is relaxed for it in development only.
"""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger(__name__)

#: The extension's key in ``app.extensions`` (the toolbar registers none of its own).
EXTENSION = "debug_toolbar"


def toolbar_config() -> dict[str, object]:
    """Flask-DebugToolbar's settings, as the app sets them before binding it."""
    return {
        "DEBUG_TB_ENABLED": True,
        "DEBUG_TB_INTERCEPT_REDIRECTS": False,
        # Its template editor writes the templates: never from a browser.
        "DEBUG_TB_TEMPLATE_EDITOR_ENABLED": False,
    }


def init_debug_toolbar(app: Flask) -> bool:
    """Bind the toolbar if this is a development app; return whether it was bound."""
    if app.extensions["settings"].env != "development":
        return False
    try:
        from flask_debugtoolbar import DebugToolbarExtension
    except ImportError:
        # The runtime image lacks it on purpose; `make dev` runs the `dev` image, which has it.
        log.warning("APP_ENV=development without Flask-DebugToolbar installed: no toolbar (make dev installs it)")
        return False
    app.config.update(toolbar_config())
    app.extensions[EXTENSION] = DebugToolbarExtension(app)
    return True
