"""The public pages and the article editor.

Anonymous reads go through the shared cache (app.services.cache): most traffic is
anonymous and identical. A logged-in reader reads directly, so read-your-writes routing
(app.database.routing) shows them their own changes at once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.identity import login_required
from app.models.base import BIGINT_MAX
from app.services import articles, view_counts
from app.services.errors import ReadOnly, ValidationFailed
from app.services.queries import (
    MAX_PAGE,
    cached_article,
    cached_listing,
    cached_popular,
    get_article,
    list_articles,
    popular_articles,
)
from app.web.errors import refuse_on_form
from app.web.forms import ActionForm, ArticleForm, add_service_errors, form_status, require_action_form

bp = Blueprint("pages", __name__)


PER_PAGE = 20
#: Article ids are BIGINT: a larger number in the URL is a 404, not a database error.
ARTICLE = f"<int(max={BIGINT_MAX}):article_id>"


def is_anonymous() -> bool:
    return g.get("user") is None


def requested_page() -> int:
    page = request.args.get("page", 1, type=int)
    if not 1 <= page <= MAX_PAGE:
        abort(404)
    return page


def read_listing(page: int) -> dict[str, Any]:
    return cached_listing(page, PER_PAGE) if is_anonymous() else list_articles(page, PER_PAGE).as_dict()


def read_popular() -> list[dict[str, Any]]:
    return cached_popular() if is_anonymous() else popular_articles()


def read_article(article_id: int) -> dict[str, Any] | None:
    return cached_article(article_id) if is_anonymous() else get_article(article_id)


def is_author_of(article: dict[str, Any]) -> bool:
    user = g.get("user")
    return user is not None and user.id == article["author"]["id"]


@bp.get("/")
def index() -> ResponseReturnValue:
    page = requested_page()
    listing = read_listing(page)
    if page > listing["pages"]:
        abort(404)
    return render_template("pages/index.html", listing=listing)


@bp.get("/popular")
def popular() -> ResponseReturnValue:
    return render_template("pages/popular.html", articles=read_popular())


@bp.get(f"/articles/{ARTICLE}")
def article(article_id: int) -> ResponseReturnValue:
    found = read_article(article_id)
    if found is None:
        abort(404)
    is_author = is_author_of(found)
    if not is_author:
        view_counts.record_view(article_id)
    return render_template("pages/article.html", article=found, is_author=is_author)


@bp.route("/write", methods=["GET", "POST"])
@login_required
def write() -> ResponseReturnValue:
    form = ArticleForm()
    status = form_status()
    if form.validate_on_submit():
        try:
            created = articles.create_article(g.user, form.article_data())
        except ValidationFailed as exc:
            add_service_errors(form, exc.errors)
        except ReadOnly:
            status = refuse_on_form(form)
        else:
            flash("Article published. Its summary and keywords will appear in a moment.", "success")
            return redirect(url_for("pages.article", article_id=created.id))
    return render_template("pages/write.html", form=form), status


@bp.route(f"/articles/{ARTICLE}/edit", methods=["GET", "POST"])
@login_required
def edit(article_id: int) -> ResponseReturnValue:
    current = get_article(article_id)
    if current is None:
        abort(404)
    if not is_author_of(current):
        abort(403)
    # On a POST the submitted values win; on a GET the form starts from the article.
    form = ArticleForm(data={"title": current["title"], "body": current["body"]})
    status = form_status()
    if form.validate_on_submit():
        try:
            articles.update_article(g.user, article_id, form.article_data())
        except ValidationFailed as exc:
            add_service_errors(form, exc.errors)
        except ReadOnly:
            status = refuse_on_form(form)
        else:
            flash("Changes saved.", "success")
            return redirect(url_for("pages.article", article_id=article_id))
    return render_template("pages/edit.html", form=form, article=current, delete_form=ActionForm(formdata=None)), status


@bp.post(f"/articles/{ARTICLE}/delete")
@login_required
def delete(article_id: int) -> ResponseReturnValue:
    require_action_form()
    articles.delete_article(g.user, article_id)
    flash("Article deleted.", "success")
    return redirect(url_for("account.index"))
