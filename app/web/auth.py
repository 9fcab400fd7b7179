"""/register, /login and /logout.

The session itself is app.identity's: ``login_user`` starts it under a new session id and
``logout_user`` deletes it. Credentials are checked by app.services.accounts.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app import identity
from app.services import accounts
from app.services.errors import Conflict, ReadOnly, ValidationFailed
from app.web.errors import refuse_on_form
from app.web.forms import (
    LoginForm,
    RegisterForm,
    add_errors,
    add_service_errors,
    form_status,
    local_path,
    require_action_form,
)

bp = Blueprint("auth", __name__)

BAD_CREDENTIALS = "Incorrect email or password."


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    if g.get("user") is not None:
        flash("You are already logged in.", "info")
        return redirect(url_for("pages.index"))
    form = RegisterForm()
    status = form_status()
    if form.validate_on_submit():
        try:
            user = accounts.register_user(form.email.data, form.display_name.data, form.password.data)
        except ValidationFailed as exc:
            add_service_errors(form, exc.errors)
        except Conflict:
            add_errors(form.email, ["An account with this email already exists."])
        except ReadOnly:
            status = refuse_on_form(form)
        else:
            identity.login_user(user)
            flash(f"Welcome to Newsdesk, {user.display_name}! You are logged in.", "success")
            return redirect(url_for("pages.index"))
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_path = local_path(request.args.get("next"))
    if g.get("user") is not None:
        return redirect(next_path or url_for("pages.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is None:
            # One message whichever was wrong: the form must not reveal which emails have accounts.
            form.form_errors.append(BAD_CREDENTIALS)
        else:
            identity.login_user(user)
            flash(f"Welcome back, {user.display_name}.", "success")
            return redirect(next_path or url_for("pages.index"))
    return render_template("auth/login.html", form=form, next_path=next_path), form_status()


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    require_action_form()
    # No flash afterwards: it would save the session again, and logging out deletes it.
    identity.logout_user()
    return redirect(url_for("pages.index"))
