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
