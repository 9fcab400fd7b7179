"""The HTML forms' own rules (no services): required fields, lengths, clean-up of input,
service errors placed next to fields, CSRF on every form, and the login ``next`` check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from app.models.article import BODY_MAX, TITLE_MAX
from app.services.validation import EMAIL_MAX, KEY_NAME_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from app.web.forms import (
    ActionForm,
    ApiKeyForm,
    ArticleForm,
    LoginForm,
    RegisterForm,
    add_service_errors,
    local_path,
    sentence,
)
from tests.support import offline_app

VALID_REGISTRATION = {"email": "ann@example.org", "display_name": "Ann", "password": "correct horse"}


@pytest.fixture(scope="module")
def app() -> Flask:
    app = offline_app()
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    return app


@pytest.fixture
def post(app: Flask) -> Iterator:
    """Enter a POST request context with the given form data."""
    contexts = []

    def enter(data: dict[str, str]) -> None:
        ctx = app.test_request_context("/", method="POST", data=data)
        ctx.push()
        contexts.append(ctx)

    yield enter
    for ctx in reversed(contexts):
        ctx.pop()


# --- registration


def test_register_accepts_valid_input_and_strips_text_fields(post) -> None:
    post({**VALID_REGISTRATION, "email": "  ann@example.org ", "display_name": " Ann "})
    form = RegisterForm()
    assert form.validate(), form.errors
    assert form.email.data == "ann@example.org"
    assert form.display_name.data == "Ann"


@pytest.mark.parametrize("field", ["email", "display_name", "password"])
def test_register_requires_every_field(post, field: str) -> None:
    post({**VALID_REGISTRATION, field: ""})
    form = RegisterForm()
    assert not form.validate()
    assert form[field].errors, form.errors
    assert set(form.errors) == {field}


def test_register_rejects_a_blank_display_name(post) -> None:
    post({**VALID_REGISTRATION, "display_name": "   "})
    form = RegisterForm()
    assert not form.validate()
    assert form.display_name.errors


def test_register_password_length_bounds(post) -> None:
    post({**VALID_REGISTRATION, "password": "x" * (PASSWORD_MIN - 1)})
    assert not RegisterForm().validate()
    post({**VALID_REGISTRATION, "password": "x" * PASSWORD_MIN})
    assert RegisterForm().validate()
    post({**VALID_REGISTRATION, "password": "x" * (PASSWORD_MAX + 1)})
    assert not RegisterForm().validate()


def test_register_password_keeps_its_spaces(post) -> None:
    post({**VALID_REGISTRATION, "password": "  spaced out  "})
    form = RegisterForm()
    assert form.validate(), form.errors
    assert form.password.data == "  spaced out  "


def test_register_text_length_limits(post) -> None:
    post({**VALID_REGISTRATION, "display_name": "n" * (NAME_MAX + 1)})
    form = RegisterForm()
    assert not form.validate()
    assert form.display_name.errors
    post({**VALID_REGISTRATION, "email": "a" * EMAIL_MAX + "@example.org"})
    form = RegisterForm()
    assert not form.validate()
    assert form.email.errors


def test_register_shows_every_mistake_at_once(post) -> None:
    """A malformed email is reported with a short password, not on the next attempt."""
    post({"email": "not-an-email", "display_name": "Ann", "password": "short"})
    form = RegisterForm()
    assert not form.validate()
    assert form.email.errors == ["Is not an email address."]
    assert form.password.errors
    assert not form.display_name.errors


def test_register_does_not_echo_the_password(post) -> None:
    post({**VALID_REGISTRATION, "password": "short"})
    form = RegisterForm()
    form.validate()
    assert "short" not in form.password()


# --- login


def test_login_requires_email_and_password(post) -> None:
    post({"email": "", "password": ""})
    form = LoginForm()
    assert not form.validate()
    assert set(form.errors) == {"email", "password"}


def test_login_has_no_password_policy(post) -> None:
    """Policy is for new passwords; a login attempt only needs one (the service decides)."""
    post({"email": "ann@example.org", "password": "x"})
    assert LoginForm().validate()


# --- articles


def test_article_requires_title_and_body(post) -> None:
    post({"title": "  ", "body": ""})
    form = ArticleForm()
    assert not form.validate()
    assert set(form.errors) == {"title", "body"}


def test_article_length_limits(post) -> None:
    post({"title": "t" * TITLE_MAX, "body": "b" * BODY_MAX})
    assert ArticleForm().validate()
    post({"title": "t" * (TITLE_MAX + 1), "body": "b" * (BODY_MAX + 1)})
    form = ArticleForm()
    assert not form.validate()
    assert set(form.errors) == {"title", "body"}


def test_article_cleans_input_like_the_services(post) -> None:
    post({"title": "  Headline  ", "body": "One\r\nline\r\n\r\nTwo"})
    form = ArticleForm()
    assert form.validate(), form.errors
    assert form.article_data() == {"title": "Headline", "body": "One\nline\n\nTwo"}


def test_article_body_length_counts_line_breaks_once(post) -> None:
    """A browser's CRLF must not make a body that fits look too long."""
    lines, rest = divmod(BODY_MAX, 3)
    body = "ab\r\n" * lines + "x" * rest  # 3 characters a line once normalized, 4 as sent
    assert len(body) > BODY_MAX
    post({"title": "Headline", "body": body})
    form = ArticleForm()
    assert form.validate(), form.errors
    assert len(form.body.data) == BODY_MAX


# --- API keys


def test_api_key_name_rules(post) -> None:
    post({"name": "   "})
    assert not ApiKeyForm().validate()
    post({"name": "k" * (KEY_NAME_MAX + 1)})
    assert not ApiKeyForm().validate()
    post({"name": " newsletter "})
    form = ApiKeyForm()
    assert form.validate()
    assert form.name.data == "newsletter"


# --- service errors next to fields


def test_service_errors_go_next_to_their_fields(post) -> None:
    post({"title": "Headline", "body": "Text"})
    form = ArticleForm()
    assert form.validate()
    add_service_errors(form, {"title": ["must not contain NUL characters"], "_schema": ["give at least one field"]})
    assert form.title.errors == ["Must not contain NUL characters."]
    assert form.body.errors == []
    assert form.form_errors == ["Give at least one field."]


def test_service_errors_never_pose_as_a_csrf_error(post) -> None:
    post({"name": "key"})
    form = ApiKeyForm()
    form.validate()
    add_service_errors(form, {"csrf_token": ["odd"]})
    assert form.form_errors == ["Odd."]


@pytest.mark.parametrize(
    ("message", "shown"),
    [("must not be empty", "Must not be empty."), ("Already ends.", "Already ends."), ("", "")],
)
def test_sentence(message: str, shown: str) -> None:
    assert sentence(message) == shown


# --- CSRF is on every form


@pytest.mark.parametrize("form_class", [ActionForm, RegisterForm, LoginForm, ArticleForm, ApiKeyForm])
def test_every_form_carries_a_csrf_token(app: Flask, form_class: type) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        with app.test_request_context("/"):
            form = form_class()
            html = str(form.csrf_token)
            assert 'name="csrf_token"' in html and 'type="hidden"' in html
            assert form.csrf_token.current_token
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_a_form_posted_without_its_csrf_token_is_invalid(app: Flask) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        with app.test_request_context("/", method="POST", data={"email": "ann@example.org", "password": "x"}):
            form = LoginForm()
            assert not form.validate()
            assert form.csrf_token.errors
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


# --- where login may send the user next


@pytest.mark.parametrize("target", ["/", "/account", "/articles/7/edit?x=1#top", "/write?next=//elsewhere"])
def test_local_paths_are_kept(target: str) -> None:
    assert local_path(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "account",
        "//evil.example/",
        "///evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
    ],
)
def test_other_targets_are_refused(target: str | None) -> None:
    assert local_path(target) is None
