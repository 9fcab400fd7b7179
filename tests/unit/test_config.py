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
        settings(APP_ENV="production", POSTGRES_PASSWORD=STRONG).check_production()


@pytest.mark.parametrize("secret", ["change-me", "CHANGE-ME", "dev", "short-but-not-default"])
def test_production_refuses_default_or_short_secret_key(secret: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        settings(APP_ENV="production", SECRET_KEY=secret, POSTGRES_PASSWORD=STRONG).check_production()


@pytest.mark.parametrize("password", ["", "change-me", "postgres"])
def test_production_refuses_default_database_password(password: str) -> None:
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD"):
        settings(APP_ENV="production", SECRET_KEY=STRONG, POSTGRES_PASSWORD=password).check_production()


def test_production_accepts_strong_secrets() -> None:
    settings(APP_ENV="production", SECRET_KEY=STRONG, POSTGRES_PASSWORD=STRONG).check_production()


def test_production_is_the_default_environment() -> None:
    assert settings().is_production


def test_development_tolerates_defaults() -> None:
    settings(APP_ENV="development").check_production()


def test_database_urls_are_built_from_parts_with_the_password_quoted() -> None:
    s = settings(
        POSTGRES_USER="u", POSTGRES_PASSWORD="p@ss/word", POSTGRES_DB="d", DB_HOST="db", DB_REPLICA_HOST="db-replica"
    )
    assert s.database_url == "postgresql+psycopg2://u:p%40ss%2Fword@db:5432/d"
    assert s.replica_url.endswith("@db-replica:5432/d")


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


def test_the_database_password_comes_from_a_file_too(tmp_path: Path) -> None:
    # Swarm gives it as a secret (deploy/swarm/stack.yml: POSTGRES_PASSWORD_FILE).
    password = tmp_path / "postgres_password"
    password.write_text("db p@ss\n", encoding="utf-8")
    loaded = settings(POSTGRES_PASSWORD="ignored", POSTGRES_PASSWORD_FILE=str(password))
    assert make_url(loaded.database_url).password == "db p@ss"
    assert make_url(loaded.replica_url).password == "db p@ss"
