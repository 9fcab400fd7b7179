"""A stand-in for a Celery task as signal handlers see it (plain module, shared by unit tests)."""

from __future__ import annotations

from types import SimpleNamespace


class FakeTask:
    """What the signal handlers read of a task: its name and its request (one per execution),
    with the request id its headers carried. Hashable, as a signal's sender must be."""

    def __init__(self, name: str, request_id: str | None = None) -> None:
        self.name = name
        self.request = SimpleNamespace(request_id=request_id)
