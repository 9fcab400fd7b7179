from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.config import (
    RETRY_BACKOFF_MAX,
    TASK_TIME_LIMIT,
    VISIBILITY_MARGIN,
    ConfigError,
    Settings,
    visibility_timeout,
)

STRONG = "x" * 48


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_production_refuses_missing_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        settings(APP_ENV="production", APP_DB_PASSWORD=STRONG).check_production()


@pytest.mark.parametrize("secret", ["change-me", "CHANGE-ME", "dev", "short-but-not-default"])
def test_production_refuses_default_or_short_secret_key(secret: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        settings(APP_ENV="production", SECRET_KEY=secret, APP_DB_PASSWORD=STRONG).check_production()


@pytest.mark.parametrize("password", ["", "change-me", "postgres"])
def test_production_refuses_a_default_password_for_the_role_it_connects_as(password: str) -> None:
    # The app role's password is the one web/worker/beat use; the owner's is not even theirs.
    with pytest.raises(ConfigError, match="APP_DB_PASSWORD"):
        settings(
            APP_ENV="production", SECRET_KEY=STRONG, APP_DB_PASSWORD=password, POSTGRES_PASSWORD=STRONG
        ).check_production()
    settings(
        APP_ENV="production", SECRET_KEY=STRONG, APP_DB_PASSWORD=STRONG, POSTGRES_PASSWORD=password
    ).check_production()
    # migrate connects as the owner, and sets the app's password: it checks both.
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD"):
        settings(
            APP_ENV="production", DB_ROLE="owner", SECRET_KEY=STRONG, POSTGRES_PASSWORD=password, APP_DB_PASSWORD=STRONG
        ).check_production()
    with pytest.raises(ConfigError, match="APP_DB_PASSWORD"):
        settings(
            APP_ENV="production", DB_ROLE="owner", SECRET_KEY=STRONG, POSTGRES_PASSWORD=STRONG, APP_DB_PASSWORD=password
        ).check_production()


def test_production_refuses_a_default_monitor_password_in_migrate() -> None:
    with pytest.raises(ConfigError, match="MONITOR_PASSWORD"):
        settings(
            APP_ENV="production",
            DB_ROLE="owner",
            SECRET_KEY=STRONG,
            POSTGRES_PASSWORD=STRONG,
            APP_DB_PASSWORD=STRONG,
            MONITOR_PASSWORD="change-me",
        ).check_production()


def test_production_accepts_strong_secrets() -> None:
    settings(APP_ENV="production", SECRET_KEY=STRONG, APP_DB_PASSWORD=STRONG).check_production()
    settings(
        APP_ENV="production", DB_ROLE="owner", SECRET_KEY=STRONG, POSTGRES_PASSWORD=STRONG, APP_DB_PASSWORD=STRONG
    ).check_production()


def test_production_is_the_default_environment() -> None:
    assert settings().is_production


def test_development_tolerates_defaults() -> None:
    settings(APP_ENV="development").check_production()


def test_database_urls_are_built_from_parts_with_the_password_quoted() -> None:
    s = settings(
        APP_DB_USER="a", APP_DB_PASSWORD="p@ss/word", POSTGRES_DB="d", DB_HOST="db", DB_REPLICA_HOST="db-replica"
    )
    assert s.database_url == "postgresql+psycopg2://a:p%40ss%2Fword@db:5432/d"
    assert s.replica_url == "postgresql+psycopg2://a:p%40ss%2Fword@db-replica:5432/d"


def test_the_app_role_is_the_default_and_migrate_connects_as_the_owner() -> None:
    env = {"POSTGRES_USER": "owner", "POSTGRES_PASSWORD": "o", "APP_DB_PASSWORD": "a"}
    app = settings(**env)
    assert (app.db_role, make_url(app.database_url).username, make_url(app.database_url).password) == (
        "app",
        "newsdesk_app",
        "a",
    )
    owner = settings(**env, DB_ROLE="owner")
    assert (make_url(owner.database_url).username, make_url(owner.database_url).password) == ("owner", "o")
    assert make_url(owner.replica_url).username == "owner"
    assert owner.app_db_user == "newsdesk_app" and owner.app_db_password == "a"


def test_the_statement_timeout_is_not_a_startup_parameter() -> None:
    """PgBouncer refuses `options`: the app role carries statement_timeout itself (set by migrate)."""
    engine_options = settings(DB_STATEMENT_TIMEOUT_MS="1234").flask_config()["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "options" not in engine_options["connect_args"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("APP_DB_PASSWORD", "app_db_password"),
        ("MONITOR_PASSWORD", "monitor_password"),
        ("SECRET_KEY", "secret_key"),
    ],
)
def test_a_password_file_wins_over_the_variable(tmp_path: Path, name: str, field: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-the-file\n", encoding="utf-8")
    s = settings(**{name: "from-the-variable", f"{name}_FILE": str(secret)})
    assert getattr(s, field) == "from-the-file"


def test_the_database_urls_take_their_passwords_from_files(tmp_path: Path) -> None:
    (tmp_path / "app").write_text("app:secret\n", encoding="utf-8")
    (tmp_path / "owner").write_text("owner secret", encoding="utf-8")
    env = {
        "APP_DB_PASSWORD": "ignored",
        "APP_DB_PASSWORD_FILE": str(tmp_path / "app"),
        "POSTGRES_PASSWORD_FILE": str(tmp_path / "owner"),
    }
    assert make_url(settings(**env).database_url).password == "app:secret"
    assert make_url(settings(**env, DB_ROLE="owner").database_url).password == "owner secret"
    (tmp_path / "url").write_text("postgresql+psycopg2://x:y@h/z\n", encoding="utf-8")
    assert settings(DATABASE_URL_FILE=str(tmp_path / "url")).database_url == "postgresql+psycopg2://x:y@h/z"


def test_an_unreadable_password_file_is_named() -> None:
    with pytest.raises(ConfigError, match="APP_DB_PASSWORD_FILE"):
        settings(APP_DB_PASSWORD_FILE="/nonexistent/secret")


def test_explicit_database_url_wins() -> None:
    s = settings(DATABASE_URL="postgresql+psycopg2://a:b@h/x")
    assert s.database_url == "postgresql+psycopg2://a:b@h/x"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_SIZE", "many"),
        ("APP_ENV", "staging"),
        ("SESSION_COOKIE_SECURE", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("REPLICA_MAX_LAG_SECONDS", "-1"),
        ("REDIS_RETRIES", "11"),
        ("DB_ROLE", "superuser"),
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        settings(**{name: value})


def test_secure_cookie_follows_https_only() -> None:
    # Over HTTPS nginx marks cookies Secure; the app marks them on plain HTTP only when asked.
    assert settings(APP_ENV="production").session_cookie_secure is False
    assert settings(APP_ENV="production", HTTPS_ONLY="true").session_cookie_secure is True
    assert settings(APP_ENV="development", SESSION_COOKIE_SECURE="true").session_cookie_secure is True


def test_secrets_come_from_files_before_variables(tmp_path: Path) -> None:
    key = tmp_path / "secret_key"
    key.write_text("k" * 40 + "\n", encoding="utf-8")
    password = tmp_path / "redis_app"
    password.write_text("p@ss/word\n", encoding="utf-8")
    loaded = settings(SECRET_KEY="ignored", SECRET_KEY_FILE=str(key), REDIS_APP_PASSWORD_FILE=str(password))
    assert loaded.secret_key == "k" * 40
    # Quoted into the URL, user and all.
    assert loaded.redis_url == "redis://app:p%40ss%2Fword@redis:6379/2"
    with pytest.raises(ConfigError, match="SECRET_KEY_FILE"):
        settings(SECRET_KEY_FILE=str(tmp_path / "missing"))


def test_redis_urls_carry_each_users_credentials() -> None:
    loaded = settings(REDIS_APP_PASSWORD="a", REDIS_BROKER_PASSWORD="b", CACHE_PASSWORD="c")
    assert loaded.redis_url == "redis://app:a@redis:6379/2"
    assert loaded.ratelimit_storage_url == "redis://app:a@redis:6379/3"
    assert loaded.broker_url == "redis://broker:b@redis:6379/0"
    assert loaded.result_backend_url == "redis://broker:b@redis:6379/1"
    assert loaded.cache_url == "redis://default:c@cache:6379/0"
    assert settings().broker_url == "redis://redis:6379/0"  # no password: no credentials


def test_celery_reliability_settings() -> None:
    conf = settings().celery_config()
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    assert conf["task_soft_time_limit"] < conf["task_time_limit"]


def test_the_visibility_timeout_outlasts_every_legitimate_hold() -> None:
    """Nothing is redelivered while its worker still holds it: the longest retry countdown,
    then the longest run, fit under the visibility timeout (any retry without its own
    countdown waits at most as long as a backoff)."""
    conf = settings().celery_config()
    transport = conf["broker_transport_options"]
    longest_hold = RETRY_BACKOFF_MAX + conf["task_time_limit"]
    assert transport["visibility_timeout"] > longest_hold
    assert conf["task_annotations"]["*"]["default_retry_delay"] <= RETRY_BACKOFF_MAX
    assert transport["visibility_timeout"] == visibility_timeout(TASK_TIME_LIMIT, RETRY_BACKOFF_MAX, VISIBILITY_MARGIN)


def test_a_task_held_by_a_killed_worker_is_redelivered_within_two_minutes() -> None:
    """Redelivery comes at the first sweep of a surviving worker after the visibility timeout;
    kombu sweeps every ``unacked_restore_interval`` x ``unacked_restore_throttle`` seconds."""
    transport = settings().celery_config()["broker_transport_options"]
    sweep = transport["unacked_restore_interval"] * transport["unacked_restore_throttle"]
    assert transport["visibility_timeout"] + sweep <= 120
    assert transport["unacked_mutex_expire"] <= 60, "a worker killed mid-sweep blocks sweeps this long"


def test_visibility_timeout_follows_the_limits() -> None:
    assert visibility_timeout(90, 15, 10) == 115
    assert visibility_timeout(300, 60, 10) == 370
