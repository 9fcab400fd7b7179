"""The public pages and the article editor.

Anonymous reads are cached as whole responses (app.response_cache): most traffic is
anonymous and identical. A logged-in reader reads directly, so read-your-writes routing
(app.database.routing) shows them their own changes at once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.identity import login_required
from app.models.base import BIGINT_MAX
from app.response_cache import cached_response, shares_cache
from app.services import articles, cache, view_counts
from app.services.errors import ReadOnly, ValidationFailed
from app.services.queries import MAX_PAGE, Cursor, get_article, list_articles, popular_articles
from app.web.errors import refuse_on_form
from app.web.forms import ActionForm, ArticleForm, add_service_errors, form_status, require_action_form

bp = Blueprint("pages", __name__)


PER_PAGE = 20
#: Article ids are BIGINT: a larger number in the URL is a 404, not a database error.
ARTICLE = f"<int(max={BIGINT_MAX}):article_id>"


def requested_page() -> int:
    page = request.args.get("page", 1, type=int)
    if not 1 <= page <= MAX_PAGE:
        abort(404)
    return page


def requested_cursor() -> Cursor | None:
    """The ``cursor`` of an "Older" link; a cursor that is not one of ours is a 404."""
    text = request.args.get("cursor")
    if text is None:
        return None
    cursor = Cursor.decode(text)
    if cursor is None:
        abort(404)
    return cursor


def is_author_of(article: dict[str, Any]) -> bool:
    user = g.get("user")
    return user is not None and user.id == article["author"]["id"]


@bp.get("/")
def index() -> ResponseReturnValue:
    after = requested_cursor()
    page = 1 if after is not None else requested_page()

    def render() -> ResponseReturnValue:
        listing = list_articles(PER_PAGE, page=page, after=after)
        if listing.pages is not None and page > listing.pages:
            abort(404)
        return render_template("pages/index.html", listing=listing)

    if not shares_cache():
        return render()
    if after is not None:
        return cached_response(cache.ARCHIVE, f"index:after:{after.encode()}", cache.LIST_TTL, render)
    return cached_response(cache.LATEST, f"index:page:{page}", cache.LIST_TTL, render)


@bp.get("/popular")
def popular() -> ResponseReturnValue:
    def render() -> ResponseReturnValue:
        return render_template("pages/popular.html", articles=popular_articles())

    return cached_response(cache.LATEST, "popular", cache.POPULAR_TTL, render) if shares_cache() else render()


def existing_article(article_id: int) -> dict[str, Any]:
    found = get_article(article_id)
    if found is None:
        abort(404)
    return found


@bp.get(f"/articles/{ARTICLE}")
def article(article_id: int) -> ResponseReturnValue:
    if shares_cache():

        def render() -> ResponseReturnValue:
            return render_template("pages/article.html", article=existing_article(article_id), is_author=False)

        namespace = cache.article_namespace(article_id)
        return cached_response(namespace, "page", cache.DETAIL_TTL, render, view_of=article_id)
    found = existing_article(article_id)
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
    current = existing_article(article_id)
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
