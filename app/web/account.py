"""/account: the user's articles and API keys.

A new key is shown once, in the page that answers the POST that created it: only its
hash is stored, and it is never put in the session or a redirect. That response is
``Cache-Control: no-store`` (as is every account page) so no cache keeps a copy.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, g, make_response, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from app.identity import login_required
from app.models import ApiKey
from app.models.base import BIGINT_MAX
from app.services import accounts
from app.services.errors import ValidationFailed
from app.services.queries import api_keys_of, articles_by_author
from app.web.forms import ActionForm, ApiKeyForm, add_service_errors, require_action_form

bp = Blueprint("account", __name__)


def account_page(
    key_form: ApiKeyForm, new_key: ApiKey | None = None, plaintext: str | None = None, status: int = 200
) -> Response:
    response = make_response(
        render_template(
            "account/index.html",
            articles=articles_by_author(g.user.id),
            api_keys=api_keys_of(g.user.id),
            key_form=key_form,
            revoke_form=ActionForm(formdata=None),
            new_key=new_key,
            plaintext=plaintext,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account")
@login_required
def index() -> ResponseReturnValue:
    return account_page(ApiKeyForm(formdata=None))


@bp.post("/account/keys")
@login_required
def create_key() -> ResponseReturnValue:
    form = ApiKeyForm()
    if form.validate_on_submit():
        try:
            key, plaintext = accounts.create_api_key(g.user, form.name.data)
        except ValidationFailed as exc:
            add_service_errors(form, exc.errors)
        else:
            return account_page(ApiKeyForm(formdata=None), new_key=key, plaintext=plaintext)
    return account_page(form, status=422)


@bp.post(f"/account/keys/<int(max={BIGINT_MAX}):key_id>/revoke")
@login_required
def revoke_key(key_id: int) -> ResponseReturnValue:
    require_action_form()
    key = accounts.revoke_api_key(g.user, key_id)
    flash(f"API key “{key.name}” revoked. Programs using it can no longer sign in.", "success")
    return redirect(url_for("account.index"))
