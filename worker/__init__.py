"""Celery entry point: `celery -A worker worker` and `celery -A worker beat`.

The Flask app is built through the factory so tasks share its config, engines and
extensions; every task runs inside an app context (see app.extensions.celery_init_app).
"""

from app import create_app
from worker import signals

flask_app = create_app()
celery = flask_app.extensions["celery"]
celery.conf.include = ["worker.tasks.smoke", "worker.tasks.articles", "worker.tasks.accounts"]
celery.conf.beat_schedule = {
    "flush-views": {"task": "articles.flush_views", "schedule": 2.0, "options": {"expires": 10}},
}
signals.connect(celery)

__all__ = ["celery", "flask_app"]
