"""Accounts and API keys: registration, authentication, key creation and revocation."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import contains_eager
from werkzeug.security import check_password_hash, generate_password_hash

from app import task_names
from app.database import db, on_commit, primary_available, reading_within, replica_fallback, use_primary
from app.models import ApiKey, User
from app.services import cache, mail, outbox
from app.services.errors import Conflict, NotFound, ReadOnly
from app.services.keys import generate_key, hash_key, looks_like_key
from app.services.validation import normalize_email, validate_key_name, validate_registration

# scrypt (Werkzeug's default): salted and memory-hard.
PASSWORD_METHOD = "scrypt"
# Hash checked when no account matches, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=PASSWORD_METHOD)
#: last_used_at is refreshed at most this often, so API reads do not each write a row.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: A key is checked on the replica only while it is at most this many seconds behind the
#: primary, so a revoked key stops working within that (README: "a revoked key").
KEY_CHECK_MAX_LAG_SECONDS = 5.0

log = logging.getLogger(__name__)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def register_user(email: str, display_name: str, password: str, *, is_admin: bool = False) -> User:
    """Create an account. Raises ValidationFailed, or Conflict when the email is taken."""
    email, display_name, password = validate_registration(email, display_name, password)
    user = User(email=email, display_name=display_name, password_hash=hash_password(password), is_admin=is_admin)
    db.session.add(user)
    subject, body = mail.welcome(user.display_name)
    outbox.add_task(task_names.SEND_EMAIL, user.email, subject, body)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("an account with this email already exists") from None
    return user


@replica_fallback
@use_primary
def find_user_by_email(email: str) -> User | None:
    """Looked up on the primary: used at login, right after a registration may have written it.
    With the primary down, on the replica (logging in goes on: sessions live in Redis)."""
    stmt = sa.select(User).where(sa.func.lower(User.email) == normalize_email(email))
    return db.session.execute(stmt).scalar_one_or_none()


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, or None (in constant-ish time)."""
    user = find_user_by_email(email) if isinstance(email, str) else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.is_active:
        return None
    return user


def create_api_key(user: User, name: str) -> tuple[ApiKey, str]:
    """A new key for ``user``; returns the row and the plaintext key (shown once)."""
    name = validate_key_name(name)
    new = generate_key()
    key = ApiKey(user_id=user.id, name=name, prefix=new.prefix, key_hash=new.key_hash)
    db.session.add(key)
    db.session.commit()
    return key, new.plaintext


def revoke_api_key(user: User, key_id: int) -> ApiKey:
    key = db.session.execute(
        sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id).with_for_update()
    ).scalar_one_or_none()
    if key is None:
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        on_commit(cache.invalidate, cache.KEYS)  # processes that keep keys in memory drop them
    db.session.commit()
    return key


@replica_fallback
def _active_key(key_hash: str) -> ApiKey | None:
    stmt = (
        sa.select(ApiKey)
        .join(User, User.id == ApiKey.user_id)
        .options(contains_eager(ApiKey.user))
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None), User.is_active)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def authenticate_api_key(plaintext: str) -> ApiKey | None:
    """The active key matching ``plaintext``.

    Checked on the replica while it is at most KEY_CHECK_MAX_LAG_SECONDS behind (else on the
    primary), so keyed reads need no primary and a revoked key stops working within that
    time. A key the replica does not know (created a moment ago) is looked up on the primary.
    With the primary down the replica decides, whatever its lag.

    Its ``last_used_at`` is refreshed at most once a minute, outside the request's session,
    so that using a key does not make every API read a write; not at all while the primary is down.
    """
    if not looks_like_key(plaintext):
        return None
    key_hash = hash_key(plaintext)
    with reading_within(KEY_CHECK_MAX_LAG_SECONDS):
        key = _active_key(key_hash)
    if key is None and primary_available():
        with use_primary:
            key = _active_key(key_hash)
    if key is not None:
        touch_api_key(key)
    return key


def touch_api_key(key: ApiKey) -> None:
    """Record that ``key`` was used: at most once a minute, outside the request's session, and
    not at all while the primary is down."""
    now = datetime.now(UTC)
    if (key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION) and primary_available():
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        except (DBAPIError, ReadOnly) as exc:
            log.warning("last use of API key %s not recorded: %s", key.id, exc)
            return
        key.last_used_at = now  # also on a copy a process keeps (app.api.inputs)


def set_admin(email: str, is_admin: bool = True) -> User:
    user = find_user_by_email(email)
    if user is None:
        raise NotFound(f"no account with email {email}")
    user.is_admin = is_admin
    db.session.commit()
    return user
