"""The chaos suite's compose project: start it, remove it, and reach into its services."""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import urlsplit

from dotenv import dotenv_values

from tools.shell import ROOT, CommandError, run, say, wait_until

# Run in a web container (`python - ARGS`): the suite's writers, each with its own API keys
# (writes are limited per key), in one process rather than a `flask` command per key.
SETUP_SCRIPT = """
import json, sys
from app import create_app
from app.services import accounts

spec = json.loads(sys.argv[1])
app = create_app()
out = {"keys": []}
with app.app_context():
    for n in range(spec["writers"]):
        email = f"chaos-{spec['run']}-writer-{n}@example.test"
        user = accounts.register_user(email, f"Chaos Writer {n}", spec["password"])
        out.setdefault("emails", []).append(email)
        for k in range(spec["keys_per_writer"]):
            out["keys"].append(accounts.create_api_key(user, f"chaos-{k}")[1])
print("CHAOS_SETUP " + json.dumps(out))
"""


class Project:
    """One compose project of this repository's stack, addressed by name (COMPOSE_PROJECT_NAME)."""

    def __init__(self, name: str, http_port: int, https_port: int) -> None:
        self.name = name
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": name,
            "HTTP_PORT": str(http_port),
            "HTTPS_PORT": str(https_port),
        }
        self.env.pop("COMPOSE_PROFILES", None)
        settings = {**dotenv_values(ROOT / ".env"), **os.environ}
        self.pg_user = settings.get("POSTGRES_USER") or "newsdesk"
        self.pg_db = settings.get("POSTGRES_DB") or "newsdesk"
        # The database number of the app's Redis data (sessions, view counts): REDIS_URL's path.
        self.redis_db = urlsplit(settings.get("REDIS_URL") or "redis://redis:6379/2").path.strip("/") or "0"
        #: How often each web process sends the views it counted (app.services.view_counts).
        self.view_flush_seconds = float(settings.get("VIEW_FLUSH_SECONDS") or 1.0)

    def compose(self, *args: str, timeout: float = 600, check: bool = True, stdin: str | None = None) -> str:
        """`docker compose` in this project; its stdout."""
        return run(["docker", "compose", *args], env=self.env, timeout=timeout, check=check, stdin=stdin).stdout

    def up(self) -> None:
        """The stack as `make up` starts it: 3 web replicas, 2 workers, seeded."""
        say(f"starting compose project {self.name} at {self.base_url} (make up WEB=3 WORKERS=2)")
        run(["make", "--no-print-directory", "up", "WEB=3", "WORKERS=2"], env=self.env, timeout=1200)

    def down(self) -> None:
        say(f"removing compose project {self.name} (containers, network, volumes)")
        self.compose("--profile", "*", "down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)

    def is_running(self) -> bool:
        return bool(self.ids("nginx"))

    def deploy(self) -> None:
        run(["scripts/deploy.sh"], env=self.env, timeout=900)

    # --- containers ---------------------------------------------------------------------------
    def ids(self, service: str) -> list[str]:
        """Full ids of the service's running containers."""
        return self.compose("ps", "-q", "--status", "running", service).split()

    @staticmethod
    def state(container: str) -> str:
        """``running/healthy``, ``running/starting``, ``exited/``, ..."""
        fmt = "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}"
        return run(["docker", "inspect", "-f", fmt, container], check=False).stdout.strip()

    def wait_healthy(self, service: str, count: int, timeout: float = 180) -> None:
        def healthy() -> bool:
            ids = self.ids(service)
            return len(ids) >= count and all(self.state(cid) == "running/healthy" for cid in ids)

        wait_until(healthy, timeout, f"{count} healthy {service} container(s)", interval=0.5)

    @staticmethod
    def docker(*args: str, timeout: float = 300) -> str:
        return run(["docker", *args], timeout=timeout).stdout

    # --- data -------------------------------------------------------------------------------
    def psql(self, sql: str, service: str = "db") -> str:
        return self.compose(
            "exec", "-T", service, "psql", "-v", "ON_ERROR_STOP=1", "-qtAX", "-U", self.pg_user, "-d", self.pg_db,
            "-c", sql, timeout=60,
        ).strip()  # fmt: skip

    def client_backends(self, service: str) -> int:
        """Client connections PostgreSQL on ``service`` (db or db-replica) serves right now."""
        return int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'", service))

    def redis(self, *args: str) -> str:
        return self.compose("exec", "-T", "redis", "redis-cli", "-n", self.redis_db, *args, timeout=60).strip()

    def setup_writers(self, writers: int, keys_per_writer: int, password: str) -> tuple[list[str], list[str]]:
        """Accounts and API keys for the load's writes: (emails, keys)."""
        run = uuid.uuid4().hex[:8]  # new accounts every run (an --attach run may follow another)
        spec = json.dumps({"run": run, "writers": writers, "keys_per_writer": keys_per_writer, "password": password})
        out = self.compose("exec", "-T", "web", "python", "-", spec, stdin=SETUP_SCRIPT, timeout=120)
        line = next(line for line in out.splitlines() if line.startswith("CHAOS_SETUP "))
        made = json.loads(line.removeprefix("CHAOS_SETUP "))
        return made["emails"], made["keys"]

    def readable_articles(self, limit: int) -> list[int]:
        """Ids of processed articles not written by the suite: what the load reads (and counts views of)."""
        rows = self.psql(
            "SELECT a.id FROM articles a JOIN users u ON u.id = a.author_id"
            f" WHERE a.status = 'ready' AND u.email NOT LIKE 'chaos-%' ORDER BY a.id LIMIT {int(limit)}"
        )
        ids = [int(row) for row in rows.split()]
        if len(ids) < limit:
            raise CommandError(f"project {self.name} has {len(ids)} ready articles, the suite reads {limit}")
        return ids

    def wait_for_container_log(self, service: str, text: str, since: float, timeout: float) -> str:
        """The id of the service's container that logs ``text`` (after the Unix time ``since``)."""

        def find() -> str | None:
            for cid in self.ids(service):
                logs = run(["docker", "logs", "--since", f"{since:.3f}", cid], check=False)
                if text in logs.stdout or text in logs.stderr:
                    return cid
            return None

        return wait_until(find, timeout, f"a {service} container to log {text!r}", interval=0.5)
