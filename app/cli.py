"""Flask CLI commands (run inside the web container: `docker compose exec web flask ...`)."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

tasks_cli = AppGroup("tasks", help="Send Celery tasks from this replica.")


@tasks_cli.command("smoke")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the result.")
def smoke(timeout: float) -> None:
    """Send `smoke.ping` through the broker and print the worker's answer as JSON."""
    celery = current_app.extensions["celery"]
    result = celery.send_task("smoke.ping", kwargs={"payload": "hello"})
    answer = result.get(timeout=timeout)
    click.echo(json.dumps({"task_id": result.id, "result": answer}))
