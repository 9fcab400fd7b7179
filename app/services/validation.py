"""Validation rules for user input, shared by the API and the HTML forms."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.models.article import BODY_MAX, TITLE_MAX
from app.services.errors import ValidationFailed

EMAIL_MAX = 254
NAME_MAX = 100
PASSWORD_MIN = 8
PASSWORD_MAX = 256
KEY_NAME_MAX = 100
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the mail's job.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NOT_UNICODE = "must be valid Unicode text (no lone surrogates)"
#: A PATCH of an article that names no field.
NO_ARTICLE_FIELDS = "give at least one of: title, body"


def is_unicode_text(text: str) -> bool:
    """False for a str PostgreSQL cannot store: one with lone surrogates (JSON may escape them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, field: str, lo: int, hi: int, errors: dict[str, list[str]], *, strip: bool = True) -> str:
    if not isinstance(value, str):
        errors.setdefault(field, []).append("must be a string")
        return ""
    text = value.strip() if strip else value
    if "\x00" in text:
        errors.setdefault(field, []).append("must not contain NUL characters")
    if not is_unicode_text(text):
        errors.setdefault(field, []).append(NOT_UNICODE)
    if len(text.strip()) < lo:
        errors.setdefault(field, []).append("must not be empty" if lo == 1 else f"must be at least {lo} characters")
    elif len(text) > hi:
        errors.setdefault(field, []).append(f"must be at most {hi} characters")
    return text


def validate_article(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, str]:
    """Clean article fields. ``partial`` (PATCH): only the fields present, at least one."""
    errors: dict[str, list[str]] = {}
    allowed = {"title", "body"}
    unknown = sorted(set(data) - allowed)
    for field in unknown:
        errors.setdefault(field, []).append("is not a field of an article")
    cleaned: dict[str, str] = {}
    for field, hi in (("title", TITLE_MAX), ("body", BODY_MAX)):
        if field in data:
            cleaned[field] = _text(data[field], field, 1, hi, errors, strip=field == "title")
        elif not partial:
            errors.setdefault(field, []).append("is required")
    if partial and not cleaned and not errors:
        errors["_schema"] = [NO_ARTICLE_FIELDS]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def validate_registration(email: Any, display_name: Any, password: Any) -> tuple[str, str, str]:
    errors: dict[str, list[str]] = {}
    email_clean = _text(email, "email", 3, EMAIL_MAX, errors)
    if "email" not in errors and not _EMAIL.match(email_clean):
        errors.setdefault("email", []).append("is not an email address")
    name_clean = _text(display_name, "display_name", 1, NAME_MAX, errors)
    if not isinstance(password, str):
        errors.setdefault("password", []).append("must be a string")
    elif len(password) < PASSWORD_MIN:
        errors.setdefault("password", []).append(f"must be at least {PASSWORD_MIN} characters")
    elif len(password) > PASSWORD_MAX:
        errors.setdefault("password", []).append(f"must be at most {PASSWORD_MAX} characters")
    if errors:
        raise ValidationFailed(errors)
    return email_clean, name_clean, password


def validate_key_name(name: Any) -> str:
    errors: dict[str, list[str]] = {}
    cleaned = _text(name, "name", 1, KEY_NAME_MAX, errors)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def normalize_email(email: str) -> str:
    return email.strip().lower()
