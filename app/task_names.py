"""The names of the Celery tasks: the one place the web app (which sends them) and the
worker (which registers them, in worker/tasks/) agree on. No imports, so both sides can
use it without loading the other. tests/unit/test_task_wiring.py checks that every name
here is registered by the worker and that the app sends tasks only by these names.
"""

from __future__ import annotations

PROCESS_ARTICLE = "articles.process"
FLUSH_VIEWS = "articles.flush_views"
REQUEUE_STUCK_ARTICLES = "articles.requeue_stuck"
SEND_EMAIL = "accounts.send_email"
SMOKE_PING = "smoke.ping"
SMOKE_SLEEP = "smoke.sleep"
RELAY_OUTBOX = "outbox.relay"
PURGE_OUTBOX = "outbox.purge"

ALL = frozenset(
    {
        PROCESS_ARTICLE,
        FLUSH_VIEWS,
        REQUEUE_STUCK_ARTICLES,
        SEND_EMAIL,
        SMOKE_PING,
        SMOKE_SLEEP,
        RELAY_OUTBOX,
        PURGE_OUTBOX,
    }
)
