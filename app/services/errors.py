"""Errors the services raise; the API turns them into problem+json, the pages into form messages."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: a request that cannot be carried out as asked."""


class ValidationFailed(ServiceError):
    """Input that breaks a rule; ``errors`` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items()))
        self.errors = errors


class NotFound(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class ReadOnly(ServiceError):
    """The primary database cannot be reached (or was, a moment ago): nothing can be written
    for now, while reads go on from the replica. The API answers 503 with ``Retry-After``;
    the pages say that the site is read-only for a moment."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the site is read-only for a moment; try again in {retry_after} s")
        self.retry_after = retry_after
