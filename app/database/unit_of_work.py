"""After-commit work: what a transaction implies (cache invalidation, tasks to send) runs
once the transaction is durable, and never for one that rolled back.

A service *registers* the work while it writes (``on_commit(invalidate_article, id)``)
instead of remembering to do it by hand after ``commit()``, in the right order. The
routing session's ``after_commit`` listener (app.database.routing) runs the queue; the end
of a transaction that did not commit drops it. The same idea as Django's
``transaction.on_commit`` and warehouse's ``addAfterCommitHook``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

#: Key in Session.info: the (callable, args, kwargs) to run after the current transaction commits.
_HOOKS = "newsdesk.after_commit"

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def add_hook(session: Session, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` after ``session``'s current (or next) transaction commits."""
    session.info.setdefault(_HOOKS, []).append((fn, args, kwargs))


def pending_hooks(session: Session) -> list[Hook]:
    """What would run if the transaction committed now (for tests and diagnostics)."""
    return list(session.info.get(_HOOKS, ()))


def run_hooks(session: Session) -> None:
    """Run and clear the queue, in registration order. The data is committed already, so a
    failing hook is logged and the others still run: one cannot undo the commit."""
    hooks: list[Hook] = session.info.pop(_HOOKS, [])
    for fn, args, kwargs in hooks:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("after-commit hook %s failed", getattr(fn, "__qualname__", fn))


def drop_hooks(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended without its hooks having run (a rollback, a close)."""
    if transaction.parent is None:
        session.info.pop(_HOOKS, None)
