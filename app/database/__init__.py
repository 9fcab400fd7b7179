"""Database access: the routing session ``db``, and the one way to say how a read is routed.

* ``db``: Flask-SQLAlchemy with a ``RoutingSession`` (app.database.routing) that sends
  writes to the primary and plain reads to the replica when it is safe.
* ``on_commit(fn, *args)``: run ``fn`` once the current transaction commits; dropped on
  rollback (app.database.unit_of_work).
* ``use_primary``: a context manager and decorator: reads inside it go to the primary.
* ``reading_at_least(lsn)``: reads inside it see WAL position ``lsn`` (a cache refill), or,
  with the primary down, whatever the replica has (it says which).
* ``reading_within(seconds)``: reads inside it use the replica only while it is at most
  ``seconds`` behind (an API key check: a revoked key stops working within that).
* ``replica_fallback``: a read that fails on the replica is run again on the primary, and
  one that fails on the primary (read-only mode: see app.database.routing) on the replica.
* ``primary_available()``, ``reads_behind()``: read-only mode, as a request sees it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import OperationalError

from app.database import unit_of_work
from app.database.routing import RoutingSession, current_router
from app.models.base import Base
from app.services.errors import ReadOnly

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
def reading_at_least(lsn: int) -> Iterator[Callable[[], bool]]:
    """Reads inside this block see at least WAL position ``lsn`` (the replica only if it has
    replayed that far). Used to refill a cache entry invalidated at ``lsn``.

    Yields ``saw_all()``: after the reads, False if one of them could not see ``lsn`` (the
    primary was down and the replica had not got that far: the best there was).
    """
    current = session()
    behind_before = current.behind_reads

    def saw_all() -> bool:
        return current.behind_reads == behind_before

    if lsn <= 0:
        yield saw_all
        return
    current.require_position(lsn)
    try:
        yield saw_all
    finally:
        current.require_position(None)


@contextlib.contextmanager
def reading_within(seconds: float) -> Iterator[None]:
    """Reads inside this block use the replica only while it is at most ``seconds`` behind
    (else the primary; with the primary down, the replica whatever its lag)."""
    current = session()
    current.limit_lag(seconds)
    try:
        yield
    finally:
        current.limit_lag(None)


def primary_available() -> bool:
    """False while the primary is known to be unreachable (read-only mode)."""
    return current_router().primary.closed


def reads_behind() -> bool:
    """Whether a read of this request came from a replica lacking something it had to see
    (the reader's own latest write, say), because the primary was down."""
    return session().behind_reads > 0


def commit_as_written(*instances: object) -> None:
    """Commit, leaving ``instances`` as this transaction wrote them instead of expired.

    What a write answers (an article "processing") must describe what it committed, not what
    an after-commit task did a moment later (the worker may finish before a refresh would
    run). The instances are refreshed first, inside the transaction (after a flush: a refresh
    would discard unflushed changes), for server defaults and onupdate values.
    """
    current = session()
    current.flush()
    for instance in instances:
        current.refresh(instance)
    previous, current.expire_on_commit = current.expire_on_commit, False
    try:
        current.commit()
    finally:
        current.expire_on_commit = previous


def committed_position() -> int | None:
    """The primary's WAL position recorded after this session's latest write (None: no write yet)."""
    return session().committed_position


def plain_rows(query: sa.Select[Any], params: Mapping[str, Any]) -> Sequence[sa.Row[Any]]:
    """The rows of a read of plain columns, on the connection the session routes ``query`` to
    (replica or primary, in the session's transaction), without the ORM's result handling: for
    a listing's twenty rows that handling was a quarter of the query's CPU."""
    connection = session().connection(bind_arguments={"clause": query})
    return connection.execute(query, params).all()


def replica_fallback(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a read; if the replica fails under it, skip the replica and run it again on the primary.
    If the primary fails under it (read-only mode has just begun), run it again on the replica.

    For read-only functions (the read path): running them twice is harmless.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ReadOnly:
            if session().wrote:
                raise
            db.session.rollback()
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
    "commit_as_written",
    "committed_position",
    "db",
    "on_commit",
    "plain_rows",
    "primary_available",
    "reading_at_least",
    "reading_within",
    "reads_behind",
    "replica_fallback",
    "session",
    "use_primary",
]
