"""Who is making the request: a logged-in user (server-side session) or an API key.

Sets ``g.user`` and ``g.writer``; ``g.writer`` is the identity whose own writes the
request must read (see app.database.routing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for

from app.database import db, replica_fallback, use_primary
from app.database.routing import current_router
from app.models import ApiKey, User
from app.services.errors import ReadOnly

F = TypeVar("F", bound=Callable[..., Any])

SESSION_USER = "user_id"


def user_writer(user_id: int) -> str:
    return f"user:{user_id}"


def key_writer(key_id: int) -> str:
    return f"key:{key_id}"


def load_session_user() -> None:
    """before_request: resolve the session's user (if any) and who the request writes as."""
    g.user = None
    user_id = session.get(SESSION_USER)
    if user_id is None:
        return
    g.writer = user_writer(user_id)
    try:
        user = session_user(user_id)
    except ReadOnly:
        # Not on the replica, and the primary cannot be asked: anonymous for now, session kept.
        g.pop("writer", None)
        return
    if user is None or not user.is_active:
        session.clear()
        g.pop("writer", None)
        return
    g.user = user


@replica_fallback
def session_user(user_id: int) -> User | None:
    """The session's user; None only when the primary says there is no such account
    (ReadOnly when the replica lacks it and the primary is down)."""
    user = db.session.get(User, user_id)
    if user is None:
        # Not on the replica (yet)? Only the primary may say the account is gone.
        current_router().check_primary()
        with use_primary:
            user = db.session.get(User, user_id)
    return user


def _new_session_id() -> None:
    """Move the session to a fresh id, deleting the old server-side record."""
    session["_rotating"] = True  # regenerate() only acts on a non-empty session
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.pop("_rotating", None)


def login_user(user: User) -> None:
    """Start an authenticated session under a new session id (no fixation).

    The primary's WAL position is recorded for the user, so that their next requests read
    their own account (created a moment ago, perhaps) even from a lagging replica.
    """
    _new_session_id()
    session.clear()
    session[SESSION_USER] = user.id
    session.permanent = True
    g.user = user
    g.writer = user_writer(user.id)
    current_router().remember_commit(db.engine, g.writer)


def logout_user() -> None:
    """End the session: the server-side record is deleted and the cookie cleared."""
    _new_session_id()
    session.clear()
    g.user = None
    g.pop("writer", None)


def use_api_key(key: ApiKey) -> None:
    g.api_key = key
    g.user = key.user
    g.writer = key_writer(key.id)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            flash("Please log in first.", "info")
            # After login, come back here, unless "here" was a form submission.
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=target))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_required(view: F) -> F:
    """Anonymous: the login page. Logged in but not an administrator: 403."""

    @functools.wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not g.user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def init_identity(app: Flask) -> None:
    app.before_request(load_session_user)
