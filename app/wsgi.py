"""WSGI entry point for gunicorn's gevent workers.

Monkey-patching comes before any other import so that sockets, locks and DNS in
everything imported later are cooperative; psycogreen then makes psycopg2 yield to
the gevent hub while it waits on PostgreSQL. Gunicorn imports this module in each
worker after fork (no preload), so engines and pools are created per process.
"""

from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

from app import create_app  # noqa: E402

app = create_app()
