"""Use cases. A service owns its transaction: it validates, writes (with the background
tasks the write implies, in the outbox), commits, and only then invalidates caches and
publishes those tasks, so nothing half-done is ever visible and no task is lost."""
