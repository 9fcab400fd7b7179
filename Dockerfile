# One image for web, worker, beat and migrate.
# PYTHON_IMAGE: the official slim Python image by default; scripts/offline-images.sh
# substitutes a compatible local build where no registry can be reached.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve pinned dependencies into a self-contained virtualenv -------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements.txt

# --- runtime: the venv and the code, run as an unprivileged user ------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=app \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system --gid 10001 newsdesk \
 && useradd --system --uid 10001 --gid newsdesk --home-dir /srv --no-create-home newsdesk
COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=newsdesk:newsdesk app ./app
COPY --chown=newsdesk:newsdesk worker ./worker
COPY --chown=newsdesk:newsdesk migrations ./migrations
COPY --chown=newsdesk:newsdesk gunicorn_config.py pyproject.toml ./
# Static files under content-hashed names, beside the originals, and their manifest
# (app/static-manifest.json): pages link the hashed names. /srv/nginx-static is where web mounts
# the `static` volume that it fills for nginx at start (python -m app.static_assets publish); an
# empty named volume takes the owner of the directory it is first mounted on: the app user.
RUN python -m app.static_assets build \
 && install -d -o newsdesk -g newsdesk /srv/nginx-static
USER newsdesk
EXPOSE 8000
# Exec form: gunicorn (or celery) is PID 1 and receives SIGTERM from `docker stop` itself.
CMD ["gunicorn", "--config", "gunicorn_config.py", "app.wsgi:app"]

# --- dev: the runtime plus the development tools of `make dev` (docker-compose.dev.yml) -----
# Flask-DebugToolbar and watchfiles, nothing else: the code itself is bind-mounted over /srv.
FROM runtime AS dev
USER root
COPY requirements-development.txt /tmp/requirements-development.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps -r /tmp/requirements-development.txt \
 && /opt/venv/bin/pip check
USER newsdesk

# --- test: the dev image plus test tools; `make test` runs unit and integration tests here ---
# (from `dev`, so the tests and mypy see the debug toolbar development wires in)
FROM dev AS test
USER root
COPY requirements-dev.txt /tmp/requirements-dev.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements-dev.txt
COPY --chown=newsdesk:newsdesk tests ./tests
# The benchmark's report and chart (tools/bench) are unit-tested too; matplotlib keeps its
# font cache in a writable place (the app user's home, /srv, is not).
COPY --chown=newsdesk:newsdesk tools ./tools
# The deployment definitions, for the unit test that keeps the Swarm stack and the compose file
# from drifting apart (tests/unit/test_swarm_stack.py), with the files their configs name.
COPY --chown=newsdesk:newsdesk docker-compose.yml ./
COPY --chown=newsdesk:newsdesk deploy ./deploy
COPY --chown=newsdesk:newsdesk nginx ./nginx
COPY --chown=newsdesk:newsdesk postgres ./postgres
COPY --chown=newsdesk:newsdesk pgbouncer ./pgbouncer
COPY --chown=newsdesk:newsdesk redis-server ./redis-server
# The load tools the unit tests exercise (openloop.py, the bare-gunicorn hello app).
COPY --chown=newsdesk:newsdesk loadtest ./loadtest
ENV MPLCONFIGDIR=/tmp/matplotlib
USER newsdesk
CMD ["pytest", "-q", "tests/unit", "tests/integration"]

# --- loadtest: the runtime plus Locust and wrk (Debian's), for `make loadtest` and `make bench` ---
FROM runtime AS loadtest
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk \
 && rm -rf /var/lib/apt/lists/*
COPY requirements-loadtest.txt /tmp/requirements-loadtest.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps -r /tmp/requirements-loadtest.txt \
 && /opt/venv/bin/pip check
COPY --chown=newsdesk:newsdesk loadtest ./loadtest
USER newsdesk
EXPOSE 8089 5557
CMD ["locust", "-f", "loadtest/locustfile.py"]

# --- the default target of a plain `docker build .`: the runtime image ---------------------
FROM runtime AS app
