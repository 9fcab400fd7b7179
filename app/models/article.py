"""Articles: written by a user, processed in the background (summary, keywords), counted when read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base
from app.models.user import User

TITLE_MAX = 200
BODY_MAX = 100_000
STATUS_PROCESSING = "processing"
STATUS_READY = "ready"


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint(f"status IN ('{STATUS_PROCESSING}', '{STATUS_READY}')", name="status"),
        CheckConstraint(f"char_length(title) BETWEEN 1 AND {TITLE_MAX}", name="title_length"),
        CheckConstraint(f"char_length(body) BETWEEN 1 AND {BODY_MAX}", name="body_length"),
        CheckConstraint("views >= 0", name="views_non_negative"),
        # Newest first, with id as the tie-breaker: the home page and GET /articles.
        Index("ix_articles_published_at_id", text("published_at DESC"), text("id DESC")),
        # An author's articles on /account.
        Index("ix_articles_author_id_published_at", "author_id", text("published_at DESC")),
        # GET /articles/popular.
        Index("ix_articles_views_id", text("views DESC"), text("id DESC")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_PROCESSING, server_default=STATUS_PROCESSING)
    summary: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default="{}")
    views: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    author: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class ArticleTerm(Base):
    """The distinct terms of each article: the corpus's document frequencies for keyword weighting."""

    __tablename__ = "article_terms"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class ArticleTotals(Base):
    """One row: how many articles exist, kept exact by triggers on ``articles`` (migration 0003)
    in the transaction of every insert, delete and truncate, so a listing's ``total`` never
    needs ``COUNT(*)`` over the table."""

    __tablename__ = "article_totals"
    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint("articles >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    articles: Mapped[int] = mapped_column(BigInteger)
