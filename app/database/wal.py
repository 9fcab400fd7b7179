"""WAL positions of the primary and the replica, as integers that compare and subtract."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: A position past every real one (the largest BIGINT): "read from the primary", used where
#: the position after a write could not be read.
UNKNOWN_LSN = 2**63 - 1


def parse_lsn(lsn: str) -> int:
    """``'16/B374D848'`` -> byte position. PostgreSQL prints an LSN as two hex halves."""
    high, _, low = lsn.partition("/")
    if not low:
        raise ValueError(f"not an LSN: {lsn!r}")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class ReplicaPosition:
    """How far a standby has replayed, and how old the newest replayed transaction is."""

    in_recovery: bool
    replay_lsn: int | None
    receive_lsn: int | None
    lag_seconds: float
    streaming: bool

    @property
    def lag_bytes(self) -> int:
        """WAL received from the primary but not yet replayed."""
        if self.replay_lsn is None or self.receive_lsn is None:
            return 0
        return max(0, self.receive_lsn - self.replay_lsn)


REPLICA_POSITION_SQL = text(
    """
    SELECT pg_is_in_recovery(),
           pg_last_wal_replay_lsn()::text,
           pg_last_wal_receive_lsn()::text,
           CASE
             WHEN NOT pg_is_in_recovery() THEN 0
             -- Nothing received that is not replayed: caught up. Replay may also be ahead of
             -- receive (WAL replayed from the archive or before streaming restarted at a
             -- segment's start): the age of the last replayed transaction is then no lag at all.
             WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
             ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
           END::float8,
           COALESCE((SELECT status = 'streaming' FROM pg_stat_wal_receiver LIMIT 1), false)
    """
)


def primary_lsn(conn: Connection) -> int:
    return parse_lsn(conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one())


def replica_position(conn: Connection) -> ReplicaPosition:
    in_recovery, replay, receive, lag, streaming = conn.execute(REPLICA_POSITION_SQL).one()
    return ReplicaPosition(
        in_recovery=bool(in_recovery),
        replay_lsn=parse_lsn(replay) if replay else None,
        receive_lsn=parse_lsn(receive) if receive else None,
        lag_seconds=float(lag),
        streaming=bool(streaming),
    )
