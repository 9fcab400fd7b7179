"""What every template can use: the current user, the replica that served the page, the
logout form, whether the page may be behind (read-only mode), and filters for dates and
article bodies.

The logout form (and so a CSRF token) exists only for logged-in users: generating a token
writes it into the session, and an anonymous page view must not create a session in Redis.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import current_app, g

from app.database import reads_behind
from app.web.forms import ActionForm

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def layout_context() -> dict[str, Any]:
    user = g.get("user")
    return {
        "current_user": user,
        "served_by": current_app.extensions["settings"].hostname,
        "logout_form": ActionForm(formdata=None) if user is not None else None,
        # The primary is down and the replica lacked something this page had to show.
        "may_be_behind": reads_behind(),
    }


def as_datetime(value: datetime | str | None) -> datetime | None:
    """Values from the cache are ISO strings; values from models are datetimes."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def human_datetime(value: datetime | str | None) -> str:
    """``21 Nov 2025, 08:18 UTC``: one unambiguous time zone for readers anywhere."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def iso_datetime(value: datetime | str | None) -> str:
    """For ``<time datetime=...>``."""
    moment = as_datetime(value)
    return moment.isoformat() if moment is not None else ""


def paragraphs(text: str | None) -> list[str]:
    """An article body split on blank lines; single line breaks stay inside a paragraph."""
    if not text:
        return []
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.strip("\n") for block in _BLANK_LINE.split(normalized) if block.strip()]


FILTERS = {"datetime": human_datetime, "isodatetime": iso_datetime, "paragraphs": paragraphs}
