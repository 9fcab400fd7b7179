"""Celery entry point: `celery -A worker worker` and `celery -A worker beat`.

The Flask app is built through the factory so tasks share its config, engines and
extensions; every task runs inside an app context (see app.extensions.celery_init_app).
The task modules are listed once, here: the worker imports them, and beat's schedule is
the union of the ``BEAT_SCHEDULE`` each declares beside its tasks.
"""

from app import create_app
from worker import signals
from worker.tasks import TASK_MODULES, beat_schedule

flask_app = create_app()
celery = flask_app.extensions["celery"]
celery.conf.include = [module.__name__ for module in TASK_MODULES]
celery.conf.beat_schedule = beat_schedule()
signals.connect(celery)

__all__ = ["celery", "flask_app"]
