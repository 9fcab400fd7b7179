"""Database access: the routing session ``db``, and the one way to say how a read is routed.

* ``db``: Flask-SQLAlchemy with a ``RoutingSession`` (app.database.routing) that sends
  writes to the primary and plain reads to the replica when it is safe.
* ``on_commit(fn, *args)``: run ``fn`` once the current transaction commits; dropped on
  rollback (app.database.unit_of_work).
* ``use_primary``: a context manager and decorator: reads inside it go to the primary.
* ``reading_at_least(lsn)``: reads inside it see WAL position ``lsn`` (a cache refill).
* ``replica_fallback``: a read that fails on the replica is run again on the primary.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import OperationalError

from app.database import unit_of_work
from app.database.routing import RoutingSession, current_router
from app.models.base import Base

db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})

P = ParamSpec("P")
R = TypeVar("R")


def session() -> RoutingSession:
    """This app context's session itself (``db.session`` is a proxy to it)."""
    return cast(RoutingSession, db.session())


def on_commit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` after the current transaction commits; never if it rolls back."""
    unit_of_work.add_hook(session(), fn, *args, **kwargs)


class _UsePrimary(contextlib.ContextDecorator):
    """``with use_primary:`` or ``@use_primary``: reads inside go to the primary.

    For a read that must see a row committed a moment ago, possibly by someone else
    (a login right after registration, a task processing a row it was just sent).
    Stateless (the pin is counted on the session), so one instance serves everyone.
    """

    def __enter__(self) -> None:
        session().pin_primary()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session().unpin_primary()


use_primary = _UsePrimary()


@contextlib.contextmanager
def reading_at_least(lsn: int) -> Iterator[None]:
    """Reads inside this block see at least WAL position ``lsn`` (the replica only if it has
    replayed that far). Used to refill a cache entry invalidated at ``lsn``."""
    if lsn <= 0:
        yield
        return
    current = session()
    current.require_position(lsn)
    try:
        yield
    finally:
        current.require_position(None)


def committed_position() -> int | None:
    """The primary's WAL position recorded after this session's latest write (None: no write yet)."""
    return session().committed_position


def replica_fallback(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a read; if the replica fails under it, skip the replica and run it again on the primary.

    For read-only functions (the read path): running them twice is harmless.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            if not session().read_from_replica:
                raise
            current_router().monitor.mark_unavailable(f"query failed: {exc.orig or exc}")
            db.session.rollback()
            with use_primary:
                return fn(*args, **kwargs)

    return wrapper


__all__ = [
    "committed_position",
    "db",
    "on_commit",
    "reading_at_least",
    "replica_fallback",
    "session",
    "use_primary",
]
