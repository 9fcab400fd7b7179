"""The transactional outbox: the Celery tasks a write implies, stored in the write's own
transaction and published to the broker after it commits (app.services.outbox)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # What the relay looks for: the unpublished rows, oldest first (a small index, as
        # almost every row is published within milliseconds of its commit).
        Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
        # What the purge deletes: published rows past their retention.
        Index("ix_outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )

    #: Also the Celery task id, so a row published twice is one task to its (idempotent) consumer.
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    task_name: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    #: Message headers, such as the id of the request that wrote the row (for the task's logs).
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Sends tried, successful or not (an operator's hint when a row stays unpublished).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
