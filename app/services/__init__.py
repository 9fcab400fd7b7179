"""Use cases. A service owns its transaction: it validates, writes, commits, and only then
invalidates caches and enqueues background work, so nothing half-done is ever visible."""
