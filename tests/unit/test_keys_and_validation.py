from __future__ import annotations

import pytest

from app.services.errors import ValidationFailed
from app.services.keys import generate_key, hash_key, looks_like_key
from app.services.validation import validate_article, validate_key_name, validate_registration


def test_generated_keys_are_unique_prefixed_and_stored_only_as_a_hash() -> None:
    a, b = generate_key(), generate_key()
    assert a.plaintext != b.plaintext
    assert a.plaintext.startswith(a.prefix + "_") and a.prefix.startswith("nd_")
    assert a.key_hash == hash_key(a.plaintext) and len(a.key_hash) == 64
    assert a.plaintext not in a.key_hash
    assert looks_like_key(a.plaintext)


@pytest.mark.parametrize("candidate", ["", "Bearer", "nd_short", "x" * 40, "nd_" + "é" * 30])
def test_malformed_keys_are_rejected_before_any_lookup(candidate: str) -> None:
    assert not looks_like_key(candidate)


def test_article_requires_title_and_body() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_article({})
    assert set(info.value.errors) == {"title", "body"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "", "body": "b"}, "title"),
        ({"title": "   ", "body": "b"}, "title"),
        ({"title": "t" * 201, "body": "b"}, "title"),
        ({"title": "t", "body": "b" * 100_001}, "body"),
        ({"title": 5, "body": "b"}, "title"),
        ({"title": "t", "body": None}, "body"),
        ({"title": "t", "body": "b", "author_id": 1}, "author_id"),
    ],
)
def test_article_field_rules(data: dict, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_article(data)
    assert field in info.value.errors


def test_article_limits_are_inclusive_and_title_is_trimmed() -> None:
    assert validate_article({"title": "  " + "t" * 200 + " ", "body": "b" * 100_000})["title"] == "t" * 200


def test_partial_update_needs_at_least_one_field() -> None:
    assert validate_article({"body": "new"}, partial=True) == {"body": "new"}
    with pytest.raises(ValidationFailed):
        validate_article({}, partial=True)


def test_registration_rules() -> None:
    assert validate_registration(" Ann@Example.org ", "Ann", "long-enough") == ("Ann@Example.org", "Ann", "long-enough")
    with pytest.raises(ValidationFailed) as info:
        validate_registration("not-an-email", "", "short")
    assert set(info.value.errors) == {"email", "display_name", "password"}


def test_key_name_rules() -> None:
    assert validate_key_name(" ci ") == "ci"
    with pytest.raises(ValidationFailed):
        validate_key_name("x" * 101)
