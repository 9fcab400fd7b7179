"""Database access: engines for the primary and the replica, WAL positions, read/write routing."""
