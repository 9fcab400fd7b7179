"""The unit of work: work registered with ``on_commit`` runs once the transaction commits on
the real primary, in order, and never for a transaction that rolled back; the services
register theirs (cache invalidation, tasks) instead of running them by hand."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from flask import Flask

from app import task_names
from app.database import db, on_commit, unit_of_work, use_primary
from app.models import User
from app.services import accounts, articles
from app.services.cache import LATEST, article_namespace
from app.services.errors import Conflict
from tests.integration.support import queued


def new_user(email: str | None = None) -> User:
    return User(email=email or f"{uuid.uuid4().hex}@example.com", display_name="U", password_hash="x")


def test_hooks_run_after_commit_in_order(app: Flask) -> None:
    ran: list[str] = []
    with app.app_context():
        db.session.add(new_user())
        on_commit(ran.append, "first")
        on_commit(ran.append, "second")
        assert ran == [], "nothing runs before the commit"
        db.session.commit()
        assert ran == ["first", "second"]
        db.session.commit()
        assert ran == ["first", "second"], "a hook runs once"


def test_a_rollback_drops_the_hooks(app: Flask) -> None:
    ran: list[str] = []
    with app.app_context():
        db.session.add(new_user())
        on_commit(ran.append, "rolled back")
        db.session.rollback()
        db.session.add(new_user())
        on_commit(ran.append, "committed")
        db.session.commit()
    assert ran == ["committed"]


def test_a_failed_commit_drops_the_hooks(app: Flask) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    ran: list[str] = []
    with app.app_context():
        db.session.add(new_user(email))
        db.session.commit()
        db.session.add(new_user(email.upper()))  # unique on lower(email)
        on_commit(ran.append, "duplicate")
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        assert unit_of_work.pending_hooks(db.session()) == []
    assert ran == []


def test_a_failing_hook_does_not_stop_the_others(app: Flask) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("hook failed")

    with app.app_context():
        db.session.add(new_user())
        on_commit(broken)
        on_commit(ran.append, "after the broken one")
        db.session.commit()
        assert db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one() == 1
    assert ran == ["after the broken one"]


def test_services_register_invalidation_and_tasks_for_after_commit(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        assert [h["task"] for h in queued(app)] == [task_names.SEND_EMAIL]
        cache = app.extensions["cache_redis"]
        before = cache.hget(f"ns:{LATEST}", "version")
        article = articles.create_article(author, {"title": "Committed", "body": "Body."})
        assert [h["task"] for h in queued(app)] == [task_names.SEND_EMAIL, task_names.PROCESS_ARTICLE]
        assert cache.hget(f"ns:{LATEST}", "version") != before, "listings invalidated after the commit"
        assert cache.hexists(f"ns:{article_namespace(article.id)}", "lsn"), "the article's own namespace too"


def test_a_rejected_registration_sends_no_mail(app: Flask) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    with app.app_context():
        accounts.register_user(email, "Writer", "long-enough-password")
        with pytest.raises(Conflict):
            accounts.register_user(email.upper(), "Writer", "long-enough-password")
    assert [h["task"] for h in queued(app)] == [task_names.SEND_EMAIL], "one mail, for the account that exists"


def test_use_primary_pins_reads_and_nests(app: Flask) -> None:
    with app.app_context():
        session = db.session()
        replica = db.engines["replica"]
        primary = db.engines[None]
        assert session.get_bind(clause=sa.select(User)) is replica
        with use_primary:
            assert session.get_bind(clause=sa.select(User)) is primary
            with use_primary:
                assert session.get_bind(clause=sa.select(User)) is primary
            assert session.get_bind(clause=sa.select(User)) is primary, "still inside the outer block"
        db.session.rollback()
        assert session.get_bind(clause=sa.select(User)) is replica

        @use_primary
        def read() -> sa.Engine | sa.Connection:
            return session.get_bind(clause=sa.select(User))

        db.session.rollback()
        assert read() is primary


def test_a_created_article_is_answered_as_committed_not_as_processed_since(app: Flask) -> None:
    """The worker may process the article before the response is written: the service's
    article is the committed row (loaded, not expired), so the 201 says `processing`."""
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        article = articles.create_article(author, {"title": "As written", "body": "Body."})
        state = sa.inspect(article)
        assert not state.expired_attributes, "nothing left to refresh after the commit"
        with db.engine.begin() as conn:  # what a fast worker would do meanwhile
            conn.execute(sa.text("UPDATE articles SET status = 'ready' WHERE id = :id"), {"id": article.id})
        assert article.status == "processing"
        assert article.published_at is not None, "server defaults were loaded before the commit"


def test_an_edit_is_committed_and_answered_as_written(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        article_id = articles.create_article(author, {"title": "Before", "body": "Body."}).id
    with app.app_context():
        edited = articles.update_article(author, article_id, {"title": "After"})
        assert (edited.title, edited.status) == ("After", "processing")
    with app.app_context(), db.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT title FROM articles WHERE id = :id"), {"id": article_id}).scalar() == "After"
        )
