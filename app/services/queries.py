"""The read path: what pages and the API show. Plain reads, routed to the replica when it
is safe (app.database.routing), retried on the primary if the replica fails underneath."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.database import db, replica_fallback
from app.models import ApiKey, Article, User
from app.services import cache

POPULAR_LIMIT = 10
#: Deeper pages are refused (404 on the site, 422 in the API) rather than turned into huge
#: OFFSETs and cache keys.
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "pages": self.pages,
        }


def article_dict(article: Article, *, with_body: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "author": {"id": article.author.id, "display_name": article.author.display_name},
        "status": article.status,
        "summary": article.summary,
        "keywords": list(article.keywords or []),
        "views": article.views,
        "published_at": article.published_at.isoformat(),
        "updated_at": article.updated_at.isoformat(),
    }
    if with_body:
        data["body"] = article.body
    return data


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": user.created_at.isoformat(),
    }


@replica_fallback
def list_articles(page: int, per_page: int) -> Page:
    """Newest first (published_at, id), as the index ix_articles_published_at_id orders them."""
    total = db.session.execute(sa.select(sa.func.count()).select_from(Article)).scalar_one()
    rows = db.session.execute(
        sa.select(Article)
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).scalars()
    return Page([article_dict(a, with_body=False) for a in rows], page, per_page, total)


@replica_fallback
def get_article(article_id: int) -> dict[str, Any] | None:
    article = db.session.get(Article, article_id)
    return article_dict(article) if article is not None else None


@replica_fallback
def popular_articles(limit: int = POPULAR_LIMIT) -> list[dict[str, Any]]:
    rows = db.session.execute(
        sa.select(Article).order_by(Article.views.desc(), Article.id.desc()).limit(limit)
    ).scalars()
    return [article_dict(a, with_body=False) for a in rows]


@replica_fallback
def articles_by_author(author_id: int, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.session.execute(
        sa.select(Article).where(Article.author_id == author_id).order_by(Article.published_at.desc()).limit(limit)
    ).scalars()
    return [article_dict(a, with_body=False) for a in rows]


@replica_fallback
def api_keys_of(user_id: int) -> list[ApiKey]:
    return list(
        db.session.execute(
            sa.select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
        ).scalars()
    )


# Anonymous readers: the same reads through the shared cache. The cache keys live here only,
# so the pages and the API share (and invalidate) the very same entries.


def cached_listing(page: int, per_page: int) -> dict[str, Any]:
    return cache.cached(
        cache.LISTS, f"list:{page}:{per_page}", cache.LIST_TTL, lambda: list_articles(page, per_page).as_dict()
    )


def cached_popular() -> list[dict[str, Any]]:
    return cache.cached(cache.LISTS, "popular", cache.POPULAR_TTL, popular_articles)


def cached_article(article_id: int) -> dict[str, Any] | None:
    """None (cached too) when there is no such article; creating it invalidates its namespace."""
    return cache.cached(
        cache.article_namespace(article_id), "detail", cache.DETAIL_TTL, lambda: get_article(article_id)
    )
