"""Articles: the read path (cached whole for anonymous readers) and the author's writes.

Anonymous reads are cached as whole responses (app.response_cache) in the same namespaces
as the site's pages, so a write invalidates what both show. A reader with a key reads
directly: read-your-writes routing
(app.database.routing) shows a key its own writes at once. Writes go through the
services, which validate, commit, invalidate and enqueue; nothing here touches the
database directly.
"""

from __future__ import annotations

from typing import Any

from flask import Response, after_this_request, jsonify, request, url_for
from flask.views import MethodView

from app.api.blueprint import KEY_OPTIONAL, KEY_REQUIRED, bp
from app.api.inputs import JSON_MIMETYPE, api_key, json_object
from app.api.schemas import (
    MAX_ARTICLE_ID,
    ArticleCreateSchema,
    ArticleListSchema,
    ArticlePageSchema,
    ArticlePatchSchema,
    ArticleSchema,
    PageQuerySchema,
)
from app.response_cache import cached_response
from app.services import articles, cache, queries, view_counts
from app.services.errors import NotFound, ValidationFailed

TAGS = ["articles"]
#: Beyond BIGINT or below 1 the route does not match: a 404 without a query.
ARTICLE_ID = f"<int(min=1, max={MAX_ARTICLE_ID}):article_id>"
LOCATION = {"Location": {"description": "URL of the new article", "schema": {"type": "string", "format": "uri"}}}
NEXT_LINK = {"Link": {"description": 'the next page, `<path>; rel="next"` (as `next`)', "schema": {"type": "string"}}}


def request_body(schema: type) -> dict[str, Any]:
    return {"required": True, "content": {JSON_MIMETYPE: {"schema": schema}}}


def existing_article(article_id: int) -> dict[str, Any]:
    """The article's detail, or NotFound."""
    found = queries.get_article(article_id)
    if found is None:
        raise NotFound(f"no article {article_id}")
    return found


def count_view_if_answered(article_id: int) -> None:
    """Count one view of the article, once the response turns out to be a 200 (or a 304) to a GET."""

    @after_this_request
    def count(response: Response) -> Response:
        if response.status_code in (200, 304) and request.method == "GET":
            view_counts.record_view(article_id)
        return response


def listing_response(per_page: int, page: int, after: queries.Cursor | None) -> Response:
    """A page of the listing as the API sends it: ``next`` as a path, and as a Link header."""
    listing = queries.list_articles(per_page, page=page, after=after).as_dict()
    cursor = listing.pop("next_cursor")
    listing["next"] = url_for("api.articles", cursor=cursor, per_page=per_page) if cursor else None
    # Sent as it is: ArticlePageSchema documents exactly these members (tests/unit/test_api_spec.py
    # checks that dumping through it changes nothing), and skipping the dump saves a tenth of
    # an uncached read's CPU.
    response = jsonify(listing)
    if listing["next"]:
        response.headers["Link"] = f'<{listing["next"]}>; rel="next"'
    return response


def json_response(schema: type, data: dict[str, Any]) -> Response:
    return jsonify(schema().dump(data))


@bp.route("/articles", endpoint="articles", tags=TAGS)
class Articles(MethodView):
    @bp.doc(security=KEY_OPTIONAL)
    # An instance, not the class: webargs would build a schema per request (a few per cent of an
    # uncached read's CPU); loading keeps no state in it.
    @bp.arguments(PageQuerySchema(), location="query", as_kwargs=True)
    @bp.response(200, ArticlePageSchema, headers=NEXT_LINK)
    @bp.problems(401, 422)
    def get(self, page: int, per_page: int, cursor: str | None) -> Response:
        """List articles, newest first

        Follow `next` (or the `Link` header) for older articles: a cursor costs the same at
        any depth, and its pages do not shift when articles are published. A numbered page
        beyond the last has no items. Without a key the answer may be up to 30 seconds old;
        with one, it includes everything that key wrote.
        """
        after = None
        if cursor is not None:
            after = queries.Cursor.decode(cursor)
            if after is None:
                raise ValidationFailed({"cursor": ["not a cursor from a `next` link"]})
        if api_key(required=False) is not None:
            return listing_response(per_page, page, after)
        if after is not None:
            name = f"api:list:after:{after.encode()}:{per_page}"
            return cached_response(cache.ARCHIVE, name, cache.LIST_TTL, lambda: listing_response(per_page, 1, after))
        name = f"api:list:page:{page}:{per_page}"
        return cached_response(cache.LATEST, name, cache.LIST_TTL, lambda: listing_response(per_page, page, None))

    @bp.doc(security=KEY_REQUIRED, requestBody=request_body(ArticleCreateSchema))
    @bp.response(201, ArticleSchema, headers=LOCATION)
    @bp.problems(400, 401, 413, 415, 422, 503)
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Publish an article

        The key's owner is the author. The summary and keywords are filled in by a
        background job: until then `status` is `processing`.
        """
        key = api_key(required=True)
        article = articles.create_article(key.user, json_object())
        location = url_for("api.article", article_id=article.id, _external=True)
        return existing_article(article.id), 201, {"Location": location}


@bp.route("/articles/popular", endpoint="popular", tags=TAGS)
class PopularArticles(MethodView):
    @bp.doc(security=KEY_OPTIONAL)
    @bp.response(200, ArticleListSchema)
    @bp.problems(401)
    def get(self) -> Response:
        """The ten most read articles

        Without a key the answer may be up to 10 seconds old.
        """

        def render() -> Response:
            return json_response(ArticleListSchema, {"items": queries.popular_articles()})

        if api_key(required=False) is None:
            return cached_response(cache.LATEST, "api:popular", cache.POPULAR_TTL, render)
        return render()


@bp.route(f"/articles/{ARTICLE_ID}", endpoint="article", tags=TAGS)
class Article(MethodView):
    @bp.doc(security=KEY_OPTIONAL)
    @bp.response(200, ArticleSchema)
    @bp.problems(401, 404)
    def get(self, article_id: int) -> Response:
        """Read an article

        Counts as a view unless the key's owner wrote it. Without a key the view count
        may be up to a minute old; edits and deletions show at once (they invalidate it).
        """
        key = api_key(required=False)
        if key is None:
            namespace = cache.article_namespace(article_id)
            render = lambda: json_response(ArticleSchema, existing_article(article_id))  # noqa: E731
            return cached_response(namespace, "api", cache.DETAIL_TTL, render, view_of=article_id)
        found = existing_article(article_id)
        if key.user_id != found["author"]["id"]:
            count_view_if_answered(article_id)
        return json_response(ArticleSchema, found)

    @bp.doc(security=KEY_REQUIRED, requestBody=request_body(ArticlePatchSchema))
    @bp.response(200, ArticleSchema)
    @bp.problems(400, 401, 403, 404, 413, 415, 422, 503)
    def patch(self, article_id: int) -> dict[str, Any]:
        """Change an article's title, body or both

        Only its author may. Fields left out keep their value.
        """
        key = api_key(required=True)
        articles.update_article(key.user, article_id, json_object())
        return existing_article(article_id)

    @bp.doc(security=KEY_REQUIRED)
    @bp.response(204)
    @bp.problems(401, 403, 404, 503)
    def delete(self, article_id: int) -> Response:
        """Delete an article

        Only its author may.
        """
        key = api_key(required=True)
        articles.delete_article(key.user, article_id)
        deleted = Response(status=204)
        del deleted.headers["Content-Type"]  # no content, so no type
        return deleted
