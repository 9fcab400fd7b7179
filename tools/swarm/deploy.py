"""``make swarm-deploy``: deploy/swarm/stack.yml to the swarm the Docker CLI points at.

    python -m tools.swarm deploy [--stack newsdesk] [--resolve-image always|changed|never]

Run it where `docker node ls` works (a manager, or DOCKER_HOST / a docker context naming one),
from a checkout with its .env (the shell's variables win over .env, as with compose). In order:

1. **Secrets**: every secret of the stack file is created from .env (the passwords, SECRET_KEY)
   or a file (the TLS certificate and key: TLS_CERT / TLS_KEY, else tls/localhost.*) as
   ``<stack>_<name>``, labelled with its value's SHA-256. Secrets are immutable: a value that
   differs from the one in the swarm is refused (README, "Beyond one machine", says how to rotate).
2. **Configs**: each config's name carries its file's content hash (SWARM_CONFIG_<NAME>), so a
   changed nginx.conf is a new config and rolls only nginx.
3. **Environment**: .env without its secrets is written to a temporary file, SWARM_ENV_FILE,
   the app services' ``env_file`` (compose gives them the whole .env).
4. **First deploy only**: the stack with no web or worker replicas, until db and redis are up.
5. **Migration**: ``x-migrate`` of the stack file as ``docker service create --mode replicated-job``
   (``<stack>_migrate``, replaced at each deploy, so its one task is this deploy's migration); the
   deploy stops when it fails. Old code keeps serving the new schema meanwhile (expand/contract).
6. ``docker stack deploy --prune``: web and worker roll one task at a time, start-first; then it
   waits until every service runs its desired number of tasks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from tools.shell import ROOT, CommandError, run, say

STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"
# Stack secret -> the .env variable holding its value.
ENV_SECRETS = {
    "secret_key": "SECRET_KEY",
    "postgres_password": "POSTGRES_PASSWORD",
    "app_db_password": "APP_DB_PASSWORD",
    "monitor_password": "MONITOR_PASSWORD",
    "replication_password": "REPLICATION_PASSWORD",
    "redis_password": "REDIS_PASSWORD",
    "redis_app_password": "REDIS_APP_PASSWORD",
    "redis_broker_password": "REDIS_BROKER_PASSWORD",
    "cache_password": "CACHE_PASSWORD",
}
# Stack secret -> (the .env variable naming a file, the default file in the checkout).
FILE_SECRETS = {
    "tls_cert": ("TLS_CERT", "tls/localhost.pem"),
    "tls_key": ("TLS_KEY", "tls/localhost.key"),
}
HASH_LABEL = "org.newsdesk.sha256"
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def load_stack(path: Path = STACK_FILE) -> dict[str, Any]:
    """The stack file as data (YAML anchors and merge keys resolved, nothing interpolated)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise CommandError(f"{path} is not a mapping")
    return data


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose-file interpolation: ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``,
    ``${NAME:?error}``, ``${NAME?error}``, ``$NAME`` and ``$$`` (a literal ``$``)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        current = env.get(name)
        unset = current is None or (operator is not None and operator.startswith(":") and current == "")
        if operator in ("-", ":-"):
            return argument if unset else str(current)
        if operator in ("?", ":?"):
            if unset:
                raise CommandError(f"{name}: {argument or 'not set'}")
            return str(current)
        return current or ""

    return _VARIABLE.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def settings(env_path: Path = ROOT / ".env") -> dict[str, str]:
    """.env, then the process environment over it (as compose reads them)."""
    values = {k: v for k, v in dotenv_values(env_path).items() if v is not None} if env_path.exists() else {}
    return {**values, **os.environ}


def is_secret_variable(name: str) -> bool:
    return name == "SECRET_KEY" or name.endswith("_PASSWORD") or name in ENV_SECRETS.values()


def app_env_lines(env_path: Path = ROOT / ".env") -> list[str]:
    """.env's variables without the secrets, as ``KEY=VALUE`` lines of a Docker env file."""
    if not env_path.exists():
        return []
    return [
        f"{name}={value}"
        for name, value in dotenv_values(env_path).items()
        if value is not None and "\n" not in value and not is_secret_variable(name)
    ]


def config_versions(stack: Mapping[str, Any], stack_file: Path = STACK_FILE) -> dict[str, str]:
    """SWARM_CONFIG_<NAME>: the first 12 hex digits of each config file's SHA-256."""
    versions = {}
    for name, config in (stack.get("configs") or {}).items():
        content = (stack_file.parent / config["file"]).read_bytes()
        versions[f"SWARM_CONFIG_{name.upper()}"] = hashlib.sha256(content).hexdigest()[:12]
    return versions


def secret_values(env: Mapping[str, str]) -> dict[str, bytes]:
    """Every secret's value, from .env or its file; refuses an empty one."""
    values: dict[str, bytes] = {}
    for name, variable in ENV_SECRETS.items():
        value = env.get(variable, "").strip()
        if not value:
            raise CommandError(f"{variable} is empty: set it in .env (make up generates one)")
        values[name] = value.encode()
    for name, (variable, default) in FILE_SECRETS.items():
        path = Path(env.get(variable) or default)
        path = path if path.is_absolute() else ROOT / path
        if not path.is_file():
            raise CommandError(f"{path} (for the secret {name}) does not exist: scripts/ensure-tls.sh makes one")
        values[name] = path.read_bytes()
    return values


def migrate_args(stack_name: str, spec: Mapping[str, Any], secret_names: Mapping[str, str]) -> list[str]:
    """``docker service create`` arguments for the interpolated ``x-migrate`` definition."""
    args = [
        "service", "create", "--detach", "--mode", "replicated-job", "--name", f"{stack_name}_migrate",
        "--network", f"{stack_name}_default", "--restart-condition", "on-failure",
        "--restart-max-attempts", "5", "--restart-delay", "3s", "--label", f"org.newsdesk.migrate={stack_name}",
    ]  # fmt: skip
    env_files = spec.get("env_file") or []
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        args += ["--env-file", env_file]
    for key, value in (spec.get("environment") or {}).items():
        args += ["--env", f"{key}={value}"]
    for secret in spec.get("secrets") or []:
        source, target = (secret, secret) if isinstance(secret, str) else (secret["source"], secret["target"])
        args += ["--secret", f"source={secret_names[source]},target={target}"]
    if spec.get("read_only"):
        args.append("--read-only")
    for cap in spec.get("cap_drop") or []:
        args += ["--cap-drop", cap]
    if spec.get("init"):
        args.append("--init")
    if spec.get("user"):
        args += ["--user", spec["user"]]
    if spec.get("hostname"):
        args += ["--hostname", spec["hostname"]]
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict) or volume.get("type") != "tmpfs":
            raise CommandError(f"x-migrate: only tmpfs volumes are supported, not {volume!r}")
        args += ["--mount", f"type=tmpfs,destination={volume['target']}"]
    memory = ((spec.get("deploy") or {}).get("resources") or {}).get("limits", {}).get("memory")
    if memory:
        args += ["--limit-memory", str(memory)]
    command = spec.get("command") or []
    return [*args, spec["image"], *command]


class Deployer:
    """One deploy of the stack file to the swarm of the Docker CLI's environment ``docker_env``."""

    def __init__(
        self,
        stack_name: str = "newsdesk",
        env: Mapping[str, str] | None = None,
        docker_env: Mapping[str, str] | None = None,
        resolve_image: str = "always",
        timeout: float = 600,
    ) -> None:
        self.stack_name = stack_name
        self.env = dict(settings() if env is None else env)
        self.docker_env = dict(os.environ if docker_env is None else docker_env)
        self.resolve_image = resolve_image
        self.timeout = timeout
        self.stack = load_stack()
        self.timings: dict[str, float] = {}

    def docker(self, *args: str, stdin: str | None = None, check: bool = True, env: Mapping[str, str] = {}) -> str:
        return run(["docker", *args], env={**self.docker_env, **env}, timeout=900, stdin=stdin, check=check).stdout

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        say(name)
        began = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - began

    # --- the deploy ---------------------------------------------------------------------------
    def deploy(self) -> dict[str, float]:
        """Secrets, migration, stack; the seconds each step took."""
        if self.docker("info", "--format", "{{.Swarm.ControlAvailable}}").strip() != "true":
            raise CommandError("the Docker CLI does not point at a swarm manager (docker node ls must work)")
        with self.step("secrets"):
            self.ensure_secrets()
        with tempfile.NamedTemporaryFile("w", prefix="ndswarm-env.", suffix=".env") as env_file:
            env_file.write("\n".join(app_env_lines()) + "\n")
            env_file.flush()
            env = {
                **self.env,
                **config_versions(self.stack),
                "SWARM_ENV_FILE": env_file.name,
                "SWARM_STACK": self.stack_name,
            }
            if not self.services():
                with self.step("first deploy: databases and Redis before the migration"):
                    self.stack_deploy({**env, "WEB": "0", "WORKERS": "0"})
                    self.wait_converged(self.timeout, only=["db", "redis"])
            with self.step("migration job"):
                self.migrate(env)
            with self.step("stack deploy (until every service runs its tasks)"):
                self.stack_deploy(env)
                self.wait_converged(self.timeout)
        return self.timings

    def ensure_secrets(self) -> None:
        declared = self.stack.get("secrets") or {}
        values = secret_values(self.env)
        missing = set(declared) - set(values)
        if missing:
            raise CommandError(f"no source for the stack's secrets {sorted(missing)} (tools/swarm/deploy.py)")
        for name in declared:
            real = self.secret_name(name)
            digest = hashlib.sha256(values[name]).hexdigest()
            found = run(
                ["docker", "secret", "inspect", "--format", f'{{{{index .Spec.Labels "{HASH_LABEL}"}}}}', real],
                env=self.docker_env,
                check=False,
            )
            if found.returncode != 0:
                self.docker(
                    "secret", "create", "--label", f"{HASH_LABEL}={digest}", real, "-", stdin=values[name].decode()
                )
            elif found.stdout.strip() != digest:
                raise CommandError(
                    f"the secret {real} in the swarm differs from this checkout's value: secrets cannot change; "
                    "rotate it as the README says (Beyond one machine: secrets)"
                )

    def secret_name(self, name: str) -> str:
        return str(interpolate(self.stack["secrets"][name]["name"], {"SWARM_STACK": self.stack_name}))

    def services(self) -> dict[str, str]:
        """{service (without the stack prefix): "running/desired"} of the deployed stack."""
        out = self.docker(
            "service", "ls", "--filter", f"label=com.docker.stack.namespace={self.stack_name}",
            "--format", "{{.Name}} {{.Replicas}}",
        )  # fmt: skip
        prefix = f"{self.stack_name}_"
        return {
            name.removeprefix(prefix): replicas.split()[0]
            for name, replicas in (line.split(" ", 1) for line in out.splitlines() if line.strip())
        }

    def stack_deploy(self, env: Mapping[str, str]) -> None:
        self.docker(
            "stack", "deploy", "--prune", "--with-registry-auth", "--resolve-image", self.resolve_image,
            "-c", str(STACK_FILE), self.stack_name, env=env,
        )  # fmt: skip

    def wait_converged(self, timeout: float, only: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending: dict[str, str] = {}
        while time.monotonic() < deadline:
            services = self.services()
            pending = {
                name: replicas
                for name, replicas in services.items()
                if (only is None or name in only) and replicas.split("/")[0] != replicas.split("/")[1]
            }
            if services and not pending:
                return
            time.sleep(1)
        raise CommandError(f"not every task is running after {timeout:.0f}s: {pending}")

    def migrate(self, env: Mapping[str, str]) -> None:
        """Run x-migrate once as a replicated job and wait for it; its logs on failure."""
        name = f"{self.stack_name}_migrate"
        self.docker("service", "rm", name, check=False)
        spec = interpolate_tree(self.stack["x-migrate"], env)
        secrets = {secret: self.secret_name(secret) for secret in self.stack["secrets"]}
        self.docker(*migrate_args(self.stack_name, spec, secrets))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            states = self.docker("service", "ps", "--no-trunc", "--format", "{{.CurrentState}}", name).splitlines()
            if any(state.startswith("Complete") for state in states):
                return
            if sum(state.startswith(("Failed", "Rejected")) for state in states) > 5:
                break
            time.sleep(1)
        logs = run(["docker", "service", "logs", "--tail", "50", name], env=self.docker_env, check=False)
        raise CommandError(f"the migration job {name} did not complete:\n{logs.stdout[-3000:]}{logs.stderr[-2000:]}")
