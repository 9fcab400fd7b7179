"""The HTML forms of the pages (Flask-WTF).

Every form is a ``FlaskForm``, so each carries a CSRF token in the hidden field
``csrf_token`` (CSRFProtect also checks every POST before the view runs).

The forms only check what saves the user a round trip (required fields, lengths, the
same limits as the services). The services are the source of truth: a view catches their
``ValidationFailed`` and hands its ``errors`` to ``add_service_errors``, which puts each
message next to the field it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import abort, request
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from app.models.article import BODY_MAX, TITLE_MAX
from app.services.errors import ValidationFailed
from app.services.validation import (
    EMAIL_MAX,
    KEY_NAME_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    validate_registration,
)


def strip(value: Any) -> Any:
    """Leading and trailing whitespace off a text field, as the services do."""
    return value.strip() if isinstance(value, str) else value


def normalize_newlines(value: Any) -> Any:
    """Browsers send a textarea's line breaks as CRLF; store LF so lengths match what was typed."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


class ActionForm(FlaskForm):
    """A button that POSTs (log out, revoke a key, delete an article): only the CSRF token."""


class RegisterForm(FlaskForm):
    email = EmailField(
        "Email",
        filters=[strip],
        validators=[DataRequired(), Length(max=EMAIL_MAX)],
        render_kw={"autocomplete": "email"},
    )
    display_name = StringField(
        "Display name",
        filters=[strip],
        validators=[DataRequired(), Length(max=NAME_MAX)],
        description="Shown as the author of your articles.",
        render_kw={"autocomplete": "nickname"},
    )
    # Not stripped and InputRequired (not DataRequired): spaces are valid password characters.
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
        description=f"At least {PASSWORD_MIN} characters.",
        render_kw={"autocomplete": "new-password"},
    )

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        """The form's own checks, plus, when they fail, the service's rules for the other fields,
        so that every mistake is shown at once (e.g. a malformed email next to a short password)."""
        if super().validate(extra_validators):
            return True
        try:
            validate_registration(self.email.data, self.display_name.data, self.password.data)
        except ValidationFailed as exc:
            for name, messages in exc.errors.items():
                field = self._fields.get(name)
                if field is not None and not field.errors:
                    add_errors(field, [sentence(m) for m in messages])
        return False


class LoginForm(FlaskForm):
    # No length rules beyond the field being present: a wrong answer gets the one generic error.
    email = EmailField(
        "Email",
        filters=[strip],
        validators=[DataRequired(), Length(max=EMAIL_MAX)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


class ArticleForm(FlaskForm):
    title = StringField("Title", filters=[strip], validators=[DataRequired(), Length(max=TITLE_MAX)])
    body = TextAreaField(
        "Body",
        filters=[normalize_newlines],
        validators=[DataRequired(), Length(max=BODY_MAX)],
        description="Separate paragraphs with a blank line.",
    )

    def article_data(self) -> dict[str, str]:
        """The fields in the shape the article services take."""
        return {"title": self.title.data, "body": self.body.data}


class ApiKeyForm(FlaskForm):
    name = StringField(
        "Key name",
        filters=[strip],
        validators=[DataRequired(), Length(max=KEY_NAME_MAX)],
        description="Where the key is used, e.g. “newsletter script”.",
    )


def require_action_form() -> None:
    """A button's POST (an ActionForm): anything but a valid one is a 400 (CSRFProtect has
    already refused a bad token before the view ran)."""
    if not ActionForm().validate_on_submit():
        abort(400)


def form_status() -> int:
    """A form shown again after a POST carries errors: 422, so clients and logs can tell."""
    return 422 if request.method == "POST" else 200


def sentence(message: str) -> str:
    """A service message ("must not be empty") as shown next to a field ("Must not be empty.")."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message[-1] in ".!?" else message + "."


def add_errors(field: Field, messages: Iterable[str]) -> None:
    # A field's errors are a tuple until it has been validated, a list after.
    field.errors = [*field.errors, *messages]


def add_service_errors(form: FlaskForm, errors: Mapping[str, Iterable[str]]) -> None:
    """Put a ``ValidationFailed.errors`` mapping next to the form's fields.

    Messages for names the form has no field for (``_schema``, an unexpected field) are
    shown as errors of the whole form, so none is ever dropped.
    """
    for name, messages in errors.items():
        texts = [sentence(m) for m in messages]
        field = form._fields.get(name)
        if field is None or name == "csrf_token":
            form.form_errors.extend(texts)
        else:
            add_errors(field, texts)


def local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (the login form's ``?next=``), else None.

    Refuses anything a browser could resolve to another origin: absolute URLs,
    scheme-relative ``//host``, backslashes (``/\\host`` is ``//host`` to browsers) and
    control characters (browsers drop tabs and newlines inside URLs).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or not target.isprintable():
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
