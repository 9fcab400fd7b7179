"""SQLAlchemy 2.0 typed models, one module per aggregate."""

from app.models.article import Article, ArticleTerm, ArticleTotals
from app.models.base import Base
from app.models.outbox import OutboxMessage
from app.models.user import ApiKey, User
from app.models.view_flush import ViewFlushBatch

__all__ = ["ApiKey", "Article", "ArticleTerm", "ArticleTotals", "Base", "OutboxMessage", "User", "ViewFlushBatch"]
