"""Settings: one object, read from the environment once (12-factor).

Every variable is listed in ``.env.example``. ``Settings.from_env`` parses and
validates; ``Settings.check_production`` refuses to start a production process
with a missing or default secret, because a forgotten ``SECRET_KEY`` on a
public deployment means forgeable sessions.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url

#: Task time limits, seconds: at the soft limit a task gets SoftTimeLimitExceeded, at the hard
#: limit its process is killed (and the task requeued, task_reject_on_worker_lost).
TASK_SOFT_TIME_LIMIT = 60
TASK_TIME_LIMIT = 90
#: The longest countdown of a retry (every task's ``retry_backoff_max``). On Redis a worker takes
#: a countdown task at once and holds it unacknowledged until it has run, so the countdown counts
#: against the visibility timeout like the run time (kombu's Redis transport docs, "Caveats":
#: an ETA past the visibility timeout is redelivered, and runs twice).
RETRY_BACKOFF_MAX = 15
#: What a delivered message may wait beyond that before it is taken for lost: a due countdown
#: task waiting for a free worker process (our tasks take well under a second), clock skew.
VISIBILITY_MARGIN = 10
#: Each worker looks for messages past the visibility timeout this often (kombu: the
#: ``unacked_restore_interval`` sweep, every ``unacked_restore_throttle``-th time: 10 x 10 s by default).
UNACKED_RESTORE_INTERVAL = 5

#: Values that ship in ``.env.example`` or tutorials and must never reach production.
DEFAULT_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "development", "postgres", "password"})
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(ValueError):
    """The environment does not describe a valid configuration."""


def env_str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def env_secret(env: Mapping[str, str], name: str, default: str = "") -> str:
    """A secret: the contents of the file ``NAME_FILE`` names (a Docker secret), else ``NAME``.

    The ``_FILE`` convention of the official PostgreSQL image: a secret mounted as a file never
    shows in ``docker inspect`` or a process's environment. Surrounding whitespace (the newline
    an editor adds) is dropped.
    """
    path = env_str(env, f"{name}_FILE")
    if not path:
        return env_str(env, name, default)
    try:
        with open(path, encoding="utf-8") as secret:
            return secret.read().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None


def redis_url(host: str, database: int, username: str = "", password: str = "") -> str:
    """``redis://[user:password@]host:6379/database``, the credentials URL-quoted."""
    credentials = ""
    if password:
        credentials = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    return f"redis://{credentials}{host}:6379/{database}"


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def visibility_timeout(time_limit: int, retry_backoff_max: int, margin: int) -> int:
    """Seconds a message may stay unacknowledged before Redis gives it to another worker.

    Longer than any legitimate hold (the longest countdown, then the longest run), so a task is
    never redelivered while its worker still has it; no longer, so a task held by a container
    that was killed comes back within this plus ``UNACKED_RESTORE_INTERVAL`` (about two minutes).
    """
    return time_limit + retry_backoff_max + margin


#: The roles a process may connect as (DB_ROLE): ``app`` (web, worker, beat: reads and writes
#: the tables, no DDL) or ``owner`` (migrate: owns the schema, creates the other roles).
DB_ROLES = ("app", "owner")


def database_credentials(env: Mapping[str, str], role: str) -> tuple[str, str]:
    """The user name and password of ``role``: APP_DB_USER/APP_DB_PASSWORD for ``app``,
    POSTGRES_USER/POSTGRES_PASSWORD for ``owner`` (each password may come from its _FILE)."""
    if role == "owner":
        return env_str(env, "POSTGRES_USER", "newsdesk"), env_secret(env, "POSTGRES_PASSWORD")
    return env_str(env, "APP_DB_USER", "newsdesk_app"), env_secret(env, "APP_DB_PASSWORD")


def database_url(env: Mapping[str, str], url_var: str, host_var: str, default_host: str, role: str = "app") -> str:
    """``url_var`` if set, else a URL for ``role`` built from the parts (password safely quoted)."""
    explicit = env_secret(env, url_var)
    if explicit:
        return explicit
    username, password = database_credentials(env, role)
    return URL.create(
        "postgresql+psycopg2",
        username=username,
        password=password or None,
        host=env_str(env, host_var, default_host),
        port=env_int(env, "POSTGRES_PORT", 5432, 1, 65535),
        database=env_str(env, "POSTGRES_DB", "newsdesk"),
    ).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    database_url: str
    replica_url: str
    redis_url: str
    broker_url: str
    result_backend_url: str
    cache_url: str
    log_level: str
    session_cookie_secure: bool
    db_pool_size: int
    db_max_overflow: int
    db_connect_timeout: int
    db_statement_timeout_ms: int
    replica_max_lag_bytes: int
    replica_max_lag_seconds: float
    replica_backoff_seconds: float
    replica_lsn_cache_ms: int
    read_your_writes_ttl: int
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_starttls: bool
    mail_from: str
    api_write_limit: str
    ratelimit_storage_url: str
    login_limit: str
    #: Retries of a Redis command after a dropped connection (see app.redis_clients).
    redis_retries: int
    #: This process's replica or worker name (the container's hostname): X-Served-By, heartbeats, /healthz.
    hostname: str = ""
    #: Memory per web process for cached anonymous responses (app.response_cache); 0 turns that layer off.
    response_cache_mb: int = 32
    #: Anonymous pages and API reads cached at all (both layers of app.response_cache); off in development.
    page_cache: bool = True
    #: How long a web process gathers view counts before sending them to Redis in one round trip
    #: (app.services.view_counts): the views a crashed process can lose.
    view_flush_seconds: float = 1.0
    #: Port of the Prometheus endpoint a worker or beat container serves (worker.metrics); 0 turns it off.
    worker_metrics_port: int = 9808
    #: Where errors are reported (app.error_reporting); "" (the default) reports nothing and loads no SDK.
    sentry_dsn: str = ""
    #: The environment Sentry files events under (default: APP_ENV).
    sentry_environment: str = ""
    #: Share of requests and tasks traced for Sentry's performance views, 0 to 1.
    sentry_traces_sample_rate: float = 0.0
    #: Where /ops reads its graphs and firing alerts (Prometheus's HTTP API); "" turns the graphs off.
    prometheus_url: str = "http://prometheus:9090"
    #: The role this process connects as (DB_ROLE): "app" (DML only) or "owner" (migrate).
    db_role: str = "app"
    #: The application role migrate creates and keeps up to date (app.database.roles).
    app_db_user: str = "newsdesk_app"
    app_db_password: str = ""
    #: The exporters' pg_monitor role migrate creates; no password: not created.
    monitor_user: str = "monitor"
    monitor_password: str = ""

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        app_env = env_str(env, "APP_ENV", "production").lower()
        if app_env not in {"production", "development", "test"}:
            raise ConfigError(f"APP_ENV must be production, development or test, got {app_env!r}")
        db_role = env_str(env, "DB_ROLE", "app").lower()
        if db_role not in DB_ROLES:
            raise ConfigError(f"DB_ROLE must be app or owner, got {db_role!r}")
        redis_host = env_str(env, "REDIS_HOST", "redis")
        # The `redis` server's ACL users (see docker-compose.yml): `app` for sessions,
        # read-your-writes marks and rate limits, `broker` for Celery. An empty password means
        # a server without authentication (a development Redis of one's own).
        app_redis = {"username": "app", "password": env_secret(env, "REDIS_APP_PASSWORD")}
        broker_redis = {"username": "broker", "password": env_secret(env, "REDIS_BROKER_PASSWORD")}
        cache_redis = {"username": "default", "password": env_secret(env, "CACHE_PASSWORD")}
        settings = cls(
            env=app_env,
            secret_key=env_secret(env, "SECRET_KEY"),
            database_url=database_url(env, "DATABASE_URL", "DB_HOST", "db", db_role),
            replica_url=database_url(env, "DATABASE_REPLICA_URL", "DB_REPLICA_HOST", "db-replica", db_role),
            redis_url=env_secret(env, "REDIS_URL") or redis_url(redis_host, 2, **app_redis),
            broker_url=env_secret(env, "CELERY_BROKER_URL") or redis_url(redis_host, 0, **broker_redis),
            result_backend_url=env_secret(env, "CELERY_RESULT_BACKEND") or redis_url(redis_host, 1, **broker_redis),
            cache_url=env_secret(env, "CACHE_REDIS_URL")
            or redis_url(env_str(env, "CACHE_HOST", "cache"), 0, **cache_redis),
            log_level=env_str(env, "LOG_LEVEL", "INFO").upper(),
            # Over HTTPS nginx marks every cookie Secure itself; this marks it on plain HTTP too,
            # which only makes sense when plain HTTP is never used (HTTPS_ONLY).
            session_cookie_secure=env_bool(env, "SESSION_COOKIE_SECURE", False) or env_bool(env, "HTTPS_ONLY", False),
            db_pool_size=env_int(env, "DB_POOL_SIZE", 20, 1, 100),
            db_max_overflow=env_int(env, "DB_MAX_OVERFLOW", 10, 0, 100),
            db_connect_timeout=env_int(env, "DB_CONNECT_TIMEOUT", 2, 1, 60),
            db_statement_timeout_ms=env_int(env, "DB_STATEMENT_TIMEOUT_MS", 15000, 0, 600000),
            replica_max_lag_bytes=env_int(env, "REPLICA_MAX_LAG_BYTES", 16 * 1024 * 1024, 0, 2**40),
            replica_max_lag_seconds=env_float(env, "REPLICA_MAX_LAG_SECONDS", 10.0, 0.0, 3600.0),
            replica_backoff_seconds=env_float(env, "REPLICA_BACKOFF_SECONDS", 5.0, 0.1, 600.0),
            replica_lsn_cache_ms=env_int(env, "REPLICA_LSN_CACHE_MS", 100, 0, 10000),
            read_your_writes_ttl=env_int(env, "READ_YOUR_WRITES_TTL", 30, 1, 3600),
            smtp_host=env_str(env, "SMTP_HOST"),
            smtp_port=env_int(env, "SMTP_PORT", 587, 1, 65535),
            smtp_user=env_str(env, "SMTP_USER"),
            smtp_password=env_secret(env, "SMTP_PASSWORD"),
            smtp_starttls=env_bool(env, "SMTP_STARTTLS", True),
            mail_from=env_str(env, "MAIL_FROM", "Newsdesk <newsdesk@localhost>"),
            api_write_limit=env_str(env, "API_WRITE_LIMIT", "60/minute"),
            ratelimit_storage_url=env_secret(env, "RATELIMIT_STORAGE_URL") or redis_url(redis_host, 3, **app_redis),
            login_limit=env_str(env, "LOGIN_FAILURE_LIMIT", "10/minute"),
            redis_retries=env_int(env, "REDIS_RETRIES", 3, 0, 10),
            hostname=env_str(env, "HOSTNAME") or socket.gethostname(),
            response_cache_mb=env_int(env, "RESPONSE_CACHE_MB", 32, 0, 4096),
            page_cache=env_bool(env, "PAGE_CACHE", app_env != "development"),
            view_flush_seconds=env_float(env, "VIEW_FLUSH_SECONDS", 1.0, 0.0, 60.0),
            worker_metrics_port=env_int(env, "WORKER_METRICS_PORT", 9808, 0, 65535),
            sentry_dsn=env_secret(env, "SENTRY_DSN"),
            sentry_environment=env_str(env, "SENTRY_ENVIRONMENT") or app_env,
            sentry_traces_sample_rate=env_float(env, "SENTRY_TRACES_SAMPLE_RATE", 0.0, 0.0, 1.0),
            prometheus_url=env_str(env, "PROMETHEUS_URL", "http://prometheus:9090"),
            db_role=db_role,
            app_db_user=env_str(env, "APP_DB_USER", "newsdesk_app"),
            app_db_password=env_secret(env, "APP_DB_PASSWORD"),
            monitor_user=env_str(env, "MONITOR_USER", "monitor"),
            monitor_password=env_secret(env, "MONITOR_PASSWORD"),
        )
        if settings.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL must be a logging level name, got {settings.log_level!r}")
        if settings.prometheus_url and not settings.prometheus_url.startswith(("http://", "https://")):
            raise ConfigError(f"PROMETHEUS_URL must be an http(s):// URL or empty, got {settings.prometheus_url!r}")
        return settings

    def check_production(self) -> None:
        """Raise ConfigError when a production process would run with unsafe secrets."""
        if not self.is_production:
            return
        problems = []
        if self.secret_key.lower() in DEFAULT_SECRETS or len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            problems.append(f"SECRET_KEY is missing, a default, or shorter than {MIN_SECRET_KEY_LENGTH} characters")
        # The password this process connects with; migrate (the owner) also sets the app's
        # and the monitor's, so it checks those too.
        password = make_url(self.database_url).password or ""
        source = "POSTGRES_PASSWORD" if self.db_role == "owner" else "APP_DB_PASSWORD"
        if password.lower() in DEFAULT_SECRETS:
            problems.append(f"the database password ({source}) is missing or a default")
        if self.db_role == "owner":
            if self.app_db_password.lower() in DEFAULT_SECRETS:
                problems.append("the application role's password (APP_DB_PASSWORD) is missing or a default")
            if self.monitor_password and self.monitor_password.lower() in DEFAULT_SECRETS:
                problems.append("the monitor role's password (MONITOR_PASSWORD) is a default")
        if problems:
            raise ConfigError(
                "refusing to start in production: "
                + "; ".join(problems)
                + " (set them in .env; `make up` generates random ones)"
            )

    def flask_config(self) -> dict[str, object]:
        """The Flask/extension configuration these settings imply."""
        engine_options = {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_pre_ping": True,
            "pool_recycle": 1800,
            "pool_timeout": 5,
            "connect_args": {
                "connect_timeout": self.db_connect_timeout,
                "application_name": "newsdesk",
                # No `options=-c statement_timeout=...` startup parameter (PgBouncer refuses it):
                # the app role carries DB_STATEMENT_TIMEOUT_MS itself (ALTER ROLE ... SET, at migrate).
            },
        }
        return {
            "SECRET_KEY": self.secret_key or "insecure-development-key-not-for-production",
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            # Reads on the replica run in autocommit: a request that reads there and then writes
            # commits the primary alone, so a replica that goes away under it (a restart) can
            # fail neither its commit nor the end of its session; no snapshot is held either.
            # No ping before each use there either: every replica read is retried on the primary
            # if the replica fails under it (app.database.replica_fallback), and the failure
            # drops the pool's old connections, so a ping (a round trip, a tenth of an uncached
            # API read's CPU) would buy nothing.
            "SQLALCHEMY_BINDS": {
                "replica": {
                    "url": self.replica_url,
                    **engine_options,
                    "isolation_level": "AUTOCOMMIT",
                    "pool_pre_ping": False,
                }
            },
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
            # Development (make dev): the debug toolbar lists each page's queries, and a template
            # changed on disk is served at the next request.
            "SQLALCHEMY_RECORD_QUERIES": self.env == "development",
            "TEMPLATES_AUTO_RELOAD": self.env == "development",
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            # 100,000 characters of escaped non-ASCII JSON fit; nginx allows 2 MiB, so the app
            # (not nginx) answers a larger body with a problem+json 413.
            "MAX_CONTENT_LENGTH": 1280 * 1024,
            # CSRF tokens live as long as the (server-side, rotated at login) session: a long
            # edit must not lose its text to an expired token.
            "WTF_CSRF_TIME_LIMIT": None,
            "CELERY": self.celery_config(),
        }

    def celery_config(self) -> dict[str, object]:
        """Reliability settings that hold for every task.

        Acknowledged late, a task held by a worker that dies is redelivered: at once if only its
        process died (reject_on_worker_lost), after the visibility timeout if the whole container
        did (``visibility_timeout``). A dropped broker connection is kombu's to repair (it
        reconnects; a publish is retried by ``task_publish_retry_policy``: a task may then be sent
        twice, and every task is idempotent); kombu passes no redis-py ``Retry`` to its pools.
        """
        transport = {
            "visibility_timeout": visibility_timeout(TASK_TIME_LIMIT, RETRY_BACKOFF_MAX, VISIBILITY_MARGIN),
            "unacked_restore_interval": UNACKED_RESTORE_INTERVAL,
            "unacked_restore_throttle": 1,
            # A worker killed during its (millisecond) sweep holds the sweep's lock this long.
            "unacked_mutex_expire": 30,
            "socket_timeout": 5,
            "socket_connect_timeout": 1,
        }
        return {
            "broker_url": self.broker_url,
            "result_backend": self.result_backend_url,
            "broker_transport_options": transport,
            # Storing a result (worker side) rides out a Redis restart: retried for about 7 s.
            "result_backend_transport_options": {
                "retry_policy": {"max_retries": 10, "interval_start": 0, "interval_step": 0.2, "interval_max": 1}
            },
            "redis_socket_timeout": 5,
            "redis_socket_connect_timeout": 1,
            # Sending a task: 3 attempts after the first, 0.3 s of waiting in all.
            "task_publish_retry_policy": {
                "max_retries": 3,
                "interval_start": 0,
                "interval_step": 0.1,
                "interval_max": 0.2,
            },
            "broker_connection_retry_on_startup": True,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_soft_time_limit": TASK_SOFT_TIME_LIMIT,
            "task_time_limit": TASK_TIME_LIMIT,
            # A retry without its own countdown must not wait past the visibility timeout either.
            "task_annotations": {"*": {"default_retry_delay": RETRY_BACKOFF_MAX}},
            "task_default_queue": "default",
            "task_ignore_result": False,
            "result_expires": 3600,
            "task_serializer": "json",
            "accept_content": ["json"],
            "worker_hijack_root_logger": False,
            # Task events (received, started, succeeded, ...) and a "sent" event per task sent:
            # Flower and `celery events` know tasks only from these. On Redis an event is one
            # PUBLISH, dropped while no monitor subscribes: a round trip, nothing stored.
            "worker_send_task_events": True,
            "task_send_sent_event": True,
            "beat_max_loop_interval": 5,
        }
