"""Flask CLI commands, run inside the web container: `docker compose exec web flask ...`."""

from __future__ import annotations

import json
import sys
import time
from typing import NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

from app import task_names
from app.config import TASK_SOFT_TIME_LIMIT
from app.services import accounts
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.smoke import wait_for_completion

tasks_cli = AppGroup("tasks", help="Send Celery tasks from this replica.")
users_cli = AppGroup("users", help="Manage accounts.")
keys_cli = AppGroup("keys", help="Manage API keys.")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@tasks_cli.command("smoke")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the ping's result.")
@click.option(
    "--seconds",
    type=click.FloatRange(0, TASK_SOFT_TIME_LIMIT, max_open=True),
    help="Send `smoke.sleep` instead: a task that sleeps this long, then records its completion.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    help="With --seconds: block up to this many seconds until the task has completed.",
)
def smoke(timeout: float, seconds: float | None, wait_seconds: float | None) -> None:
    """Send `smoke.ping` through the broker and print the worker's answer as JSON; or, with
    --seconds, a slow task (kill its worker to watch another one complete it)."""
    celery = current_app.extensions["celery"]
    if seconds is None:
        if wait_seconds is not None:
            _fail("--wait goes with --seconds")
        result = celery.send_task(task_names.SMOKE_PING, kwargs={"payload": "hello"})
        answer = result.get(timeout=timeout)
        click.echo(json.dumps({"task_id": result.id, "result": answer}))
        return
    sent_at = time.time()
    result = celery.send_task(task_names.SMOKE_SLEEP, kwargs={"seconds": seconds})
    if wait_seconds is None:
        click.echo(json.dumps({"task_id": result.id, "seconds": seconds}))
        return
    done = wait_for_completion(current_app.extensions["redis"], result.id, wait_seconds)
    if done is None:
        _fail(f"task {result.id} did not complete within {wait_seconds:g} s")
    elapsed = round(done.completed_at - sent_at, 1)
    click.echo(json.dumps({"task_id": result.id, "seconds": seconds, "worker": done.worker, "elapsed": elapsed}))


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--password", help="Password; read from stdin when omitted.")
@click.option("--admin", is_flag=True, help="May open /ops.")
@click.option("--exist-ok", is_flag=True, help="Succeed (and update the admin flag) if the account exists.")
def create_user(email: str, display_name: str, password: str | None, admin: bool, exist_ok: bool) -> None:
    """Create an account (the password is read from stdin unless --password is given)."""
    if password is None:
        password = (
            sys.stdin.readline().rstrip("\n")
            if not sys.stdin.isatty()
            else click.prompt("Password", hide_input=True, confirmation_prompt=True)
        )
    try:
        user = accounts.register_user(email, display_name, password, is_admin=admin)
    except ValidationFailed as exc:
        _fail(str(exc))
    except Conflict as exc:
        if not exist_ok:
            _fail(str(exc))
        existing = accounts.set_admin(email, admin) if admin else accounts.find_user_by_email(email)
        if existing is None:
            _fail(f"no account with email {email}")
        user = existing
    click.echo(f"user {user.id} {user.email}{' (admin)' if user.is_admin else ''}")


@keys_cli.command("create")
@click.option("--email", required=True, help="The owner's email.")
@click.option("--name", required=True, help="A name for the key.")
def create_key(email: str, name: str) -> None:
    """Create an API key; the key itself is printed alone on the last line (shown once)."""
    user = accounts.find_user_by_email(email)
    if user is None:
        _fail(f"no account with email {email}")
    try:
        key, plaintext = accounts.create_api_key(user, name)
    except ValidationFailed as exc:
        _fail(str(exc))
    click.echo(f"key {key.id} ({key.prefix}) for {user.email}:")
    click.echo(plaintext)


@keys_cli.command("revoke")
@click.option("--email", required=True)
@click.option("--id", "key_id", type=int, required=True)
def revoke_key(email: str, key_id: int) -> None:
    user = accounts.find_user_by_email(email)
    if user is None:
        _fail(f"no account with email {email}")
    try:
        accounts.revoke_api_key(user, key_id)
    except NotFound as exc:
        _fail(str(exc))
    click.echo(f"revoked key {key_id}")
