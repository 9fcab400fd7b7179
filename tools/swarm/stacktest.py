"""``make swarm-test``: the real stack (deploy/swarm/stack.yml) on the simulated 3-node swarm.

Pushes the images ``make up`` built (APP_IMAGE, DB_IMAGE, NGINX_IMAGE, REDIS_IMAGE, PGBOUNCER_IMAGE)
and the app image again under a new tag, deploys with tools/swarm/deploy.py through node 1's Docker API
(DOCKER_HOST), then checks, through nginx on the edge node:

1. the web replicas run on at least two nodes and requests reach every one (X-Served-By names
   the task: ``<stack>_web-<slot>.<node>``);
2. ``docker service scale web=6`` under load: nginx (the same task, never reloaded) reaches the
   six, and scaling back to 3 loses nothing;
3. ``docker service update --image`` (the new tag) under load: 0 failed requests;
4. read-your-writes through the API (an edit, then at once a keyed and an anonymous read) with
   the replica on another node than the primary: 0 stale reads;
5. the node running neither nginx nor a database is killed under load: the longest run of
   failed requests, and its web and worker tasks running elsewhere;
6. the migration job ran exactly once;
and records which hardening settings reached the containers (`docker inspect` of a web task).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

from tools.shell import CommandError, http_get, say, wait_until
from tools.swarm.cluster import Cluster
from tools.swarm.deploy import Deployer, settings

STACK = "newsdesk"
ROLLED_SUFFIX = "-ndswarm-rolled"
WEB, WORKERS = 3, 2


def image_setting(name: str, default: str) -> str:
    return os.environ.get(name) or settings().get(name) or default


@dataclass
class Load:
    """GET ``url`` from ``threads`` threads until stopped: requests, failures, the longest run of
    failures (seconds from the first failed request to the next success)."""

    url: str
    threads: int = 2
    requests: int = 0
    failures: int = 0
    longest_outage_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _failing_since: float | None = None
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                ok = http_get(self.url, timeout=10)[0] == 200
            except OSError:
                ok = False
            with self._lock:
                self.requests += 1
                if ok:
                    if self._failing_since is not None:
                        self.longest_outage_s = max(self.longest_outage_s, time.monotonic() - self._failing_since)
                        self._failing_since = None
                else:
                    self.failures += 1
                    if self._failing_since is None:
                        self._failing_since = began
            time.sleep(0.02)

    def figures(self) -> str:
        return f"{self.requests} requests, {self.failures} failed, longest failing run {self.longest_outage_s:.1f}s"


class StackCheck:
    def __init__(self, cluster: Cluster, stack: str = STACK) -> None:
        self.cluster = cluster
        self.stack = stack
        self.url = f"http://127.0.0.1:{cluster.edge_port}/"
        self.figures: dict[str, object] = {}

    def swarm(self, *args: str, timeout: float = 300) -> str:
        return self.cluster.in_node(self.cluster.manager, *args, timeout=timeout)

    def tasks(self, service: str) -> dict[str, str]:
        """{task hostname (X-Served-By): node} of the running tasks of ``service``."""
        out = self.swarm(
            "service", "ps", "--filter", "desired-state=running", "--format", "{{.Name}} {{.Node}} {{.CurrentState}}",
            f"{self.stack}_{service}",
        )  # fmt: skip
        tasks = {}
        for line in out.splitlines():
            name, node, state = line.split(" ", 2)
            if state.startswith("Running"):
                service_name, slot = name.rsplit(".", 1)
                tasks[f"{service_name}-{slot}.{node}"] = node
        return tasks

    def running(self, service: str, count: int) -> dict[str, str] | None:
        tasks = self.tasks(service)
        return tasks if len(tasks) == count else None

    def reach(self, expected: set[str], deadline_s: float) -> set[str]:
        """X-Served-By values seen through nginx until every one of ``expected`` answered."""
        seen: set[str] = set()
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and not expected <= seen:
            try:
                status, headers, _ = http_get(self.url, timeout=10)
            except OSError:
                continue
            if status == 200:
                seen.add(headers.get("X-Served-By", ""))
        return seen

    def per_node(self, tasks: dict[str, str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in tasks.values():
            counts[node] = counts.get(node, 0) + 1
        return dict(sorted(counts.items()))

    def nginx_task(self) -> str:
        return self.swarm("service", "ps", "-q", "--filter", "desired-state=running", f"{self.stack}_nginx").strip()

    # --- the checks ---------------------------------------------------------------------------
    def spread(self) -> None:
        tasks = wait_until(lambda: self.running("web", WEB), 120, f"{WEB} running web tasks")
        seen = self.reach(set(tasks), 60)
        self.figures["web replicas per node"] = self.per_node(tasks)
        self.figures["web replicas reached through nginx"] = f"{len(seen & set(tasks))}/{len(tasks)}"
        if len(self.per_node(tasks)) < 2:
            raise CommandError(f"the web replicas run on fewer than 2 nodes: {self.per_node(tasks)}")
        if not set(tasks) <= seen:
            raise CommandError(f"nginx never reached {sorted(set(tasks) - seen)}")

    def scale(self) -> None:
        nginx_before = self.nginx_task()
        with Load(self.url) as load:
            began = time.monotonic()
            self.swarm("service", "scale", "--detach", f"{self.stack}_web=6")
            tasks = wait_until(lambda: self.running("web", 6), 180, "6 running web tasks")
            seen = self.reach(set(tasks), 60)
            reached_s = time.monotonic() - began
        self.figures["scale web 3 -> 6 under load"] = f"{load.figures()}; all 6 reached in {reached_s:.0f}s"
        self.figures["web replicas per node at 6"] = self.per_node(tasks)
        if not set(tasks) <= seen:
            raise CommandError(f"after scaling nginx never reached {sorted(set(tasks) - seen)}")
        if self.nginx_task() != nginx_before:
            raise CommandError("the nginx task changed while scaling")
        with Load(self.url) as down:
            self.swarm("service", "scale", "--detach", f"{self.stack}_web={WEB}")
            wait_until(lambda: self.running("web", WEB), 180, f"{WEB} running web tasks")
            time.sleep(6)  # nginx's resolver re-resolves every 5 s: requests meanwhile count
        self.figures["scale web 6 -> 3 under load"] = down.figures()
        if load.failures or down.failures:
            raise CommandError(f"requests failed while scaling: {load.figures()} / {down.figures()}")

    def rolling_update(self, image: str) -> None:
        with Load(self.url) as load:
            began = time.monotonic()
            self.swarm("service", "update", "--detach", "--image", image, f"{self.stack}_web")

            def done() -> bool:
                state = self.swarm("service", "inspect", "--format", "{{.UpdateStatus.State}}", f"{self.stack}_web")
                if state.strip().startswith("rollback") or state.strip() == "paused":
                    raise RuntimeError(f"the update ended in {state.strip()}")
                return state.strip() == "completed"

            try:
                wait_until(done, 400, "the rolling update of web")
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            took = time.monotonic() - began
        self.figures["rolling update of web (new tag) under load"] = f"{load.figures()}; {took:.0f}s"
        images = self.swarm(
            "service", "ps", "--filter", "desired-state=running", "--format", "{{.Image}}", f"{self.stack}_web"
        ).split()
        if load.failures:
            raise CommandError(f"requests failed during the rolling update: {load.figures()}")
        if set(images) != {image}:
            raise CommandError(f"web runs {sorted(set(images))} after the update, not {image}")

    def web_container(self) -> tuple[str, str]:
        """(node, container id) of a running web task."""
        task = self.swarm("service", "ps", "-q", "--filter", "desired-state=running", f"{self.stack}_web").split()[0]
        node_id, container = self.swarm(
            "inspect", "--format", "{{.NodeID}} {{.Status.ContainerStatus.ContainerID}}", task
        ).split()
        return self.cluster.node_hostnames()[node_id], container

    def read_your_writes(self, rounds: int = 30) -> None:
        db_node = next(iter(self.tasks("db").values()))
        replica_node = next(iter(self.tasks("db-replica").values()))
        if db_node == replica_node:
            raise CommandError(f"db and db-replica run on the same node {db_node}")
        node, container = self.web_container()
        email = f"swarm-{uuid.uuid4().hex[:10]}@example.com"
        password = uuid.uuid4().hex
        flask = ["exec", container, "flask"]
        self.cluster.in_node(
            node, *flask, "users", "create", "--email", email, "--name", "Swarm", "--password", password
        )
        key = self.cluster.in_node(node, *flask, "keys", "create", "--email", email, "--name", "swarm").splitlines()[-1]
        bearer = {"Authorization": f"Bearer {key.strip()}"}
        api = f"{self.url}api/v1/articles"
        with requests.Session() as http:
            created = http.post(
                api, json={"title": "Swarm", "body": "Read your writes " * 20}, headers=bearer, timeout=10
            )
            if created.status_code != 201:
                raise CommandError(f"creating an article answered {created.status_code}: {created.text[:300]}")
            article = created.json()["id"]
            stale = 0
            for n in range(rounds):
                title = f"Swarm edit {n} {uuid.uuid4().hex[:8]}"
                edit = http.patch(f"{api}/{article}", json={"title": title}, headers=bearer, timeout=10)
                if edit.status_code != 200:
                    raise CommandError(f"an edit answered {edit.status_code}: {edit.text[:300]}")
                keyed = http.get(f"{api}/{article}", headers=bearer, timeout=10)
                anonymous = http.get(f"{api}/{article}", timeout=10)
                stale += (keyed.status_code != 200 or keyed.json().get("title") != title) + (
                    anonymous.status_code != 200 or anonymous.json().get("title") != title
                )
        self.figures["read-your-writes"] = (
            f"{rounds} edits, {2 * rounds} reads at once (keyed + anonymous), {stale} stale; "
            f"primary on {db_node}, replica on {replica_node}"
        )
        if stale:
            raise CommandError(f"{stale} stale reads after edits")

    def node_loss(self) -> None:
        victim = self.cluster.nodes[-1]
        on_victim = {
            service: sorted(t for t, node in self.tasks(service).items() if node == victim)
            for service in ("web", "worker")
        }
        for service in ("nginx", "db", "db-replica"):
            if victim in self.tasks(service).values():
                raise CommandError(f"{victim} runs {service}: it is not the node to kill")
        with Load(self.url, threads=3) as load:
            time.sleep(3)
            killed = time.monotonic()
            self.cluster.docker("kill", victim)

            def down() -> bool:
                out = self.swarm("node", "ls", "--format", "{{.Hostname}} {{.Status}}")
                return f"{victim} Down" in out

            wait_until(down, 90, f"{victim} marked Down")
            down_s = time.monotonic() - killed

            def rescheduled() -> bool:
                web, worker = self.tasks("web"), self.tasks("worker")
                return (
                    len(web) == WEB
                    and len(worker) == WORKERS
                    and victim not in web.values()
                    and victim not in worker.values()
                )

            wait_until(rescheduled, 180, f"web and worker tasks running off {victim}")
            moved_s = time.monotonic() - killed
            time.sleep(5)
        self.figures["node loss"] = (
            f"killed {victim} (ran web {on_victim['web']}, worker {on_victim['worker']}); Down after {down_s:.0f}s, "
            f"its tasks running elsewhere after {moved_s:.0f}s; {load.figures()}"
        )
        self.figures["web replicas per node after node loss"] = self.per_node(self.tasks("web"))
        if not on_victim["web"]:
            raise CommandError(f"{victim} ran no web task: the node loss proved nothing")
        if load.longest_outage_s > 10:
            raise CommandError(f"requests failed for {load.longest_outage_s:.1f}s in a row after the node loss")

    def migration_ran_once(self) -> None:
        states = self.swarm("service", "ps", "--format", "{{.CurrentState}}", f"{self.stack}_migrate").splitlines()
        self.figures["migration job tasks"] = states
        if len(states) != 1 or not states[0].startswith("Complete"):
            raise CommandError(f"the migration job's tasks: {states} (expected one, Complete)")

    def hardening(self) -> None:
        node, container = self.web_container()
        fmt = (
            "read_only={{.HostConfig.ReadonlyRootfs}} cap_drop={{.HostConfig.CapDrop}} user={{.Config.User}} "
            "init={{.HostConfig.Init}} security_opt={{.HostConfig.SecurityOpt}} memory={{.HostConfig.Memory}} "
            "mounts={{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}"
        )
        self.figures["a web task container (docker inspect)"] = self.cluster.in_node(
            node, "inspect", "--format", fmt, container
        ).strip()


def check(cluster: Cluster) -> dict[str, object]:
    """Push, deploy, run every check; the figures (raises CommandError on a failure)."""
    app = image_setting("APP_IMAGE", "newsdesk-app:latest")
    rolled = f"{app}{ROLLED_SUFFIX}" if ":" in app.rsplit("/", 1)[-1] else f"{app}:latest{ROLLED_SUFFIX}"
    variables = ("APP_IMAGE", "NGINX_IMAGE", "DB_IMAGE", "REDIS_IMAGE", "PGBOUNCER_IMAGE")
    images = {name: image_setting(name, "") for name in variables}
    cluster.docker("tag", app, rolled)
    try:
        names = cluster.push([*images.values(), rolled])
    finally:
        cluster.docker("rmi", rolled, check=False)
    env = {
        **settings(),
        **{variable: names[image] for variable, image in images.items()},
        # Small replicas on a 2-core machine: one gunicorn worker each.
        "GUNICORN_WORKERS": "1",
        "WEB": str(WEB),
        "WORKERS": str(WORKERS),
        "SWARM_HTTP_PORT": "80",
        "SWARM_HTTPS_PORT": "443",
    }
    docker_env = {**os.environ, "DOCKER_HOST": cluster.docker_host}
    deployer = Deployer(STACK, env=env, docker_env=docker_env, resolve_image="never")
    with cluster.timings.measure("make swarm-deploy (secrets, migration job, stack)"):
        deployer.deploy()
        wait_until(lambda: http_get(f"http://127.0.0.1:{cluster.edge_port}/", timeout=5)[0] == 200, 120, "nginx")
    stack = StackCheck(cluster)
    stack.figures["nodes"] = ", ".join(
        f"{node} ({', '.join(cluster.labels_for(n)) or 'no label'})" for n, node in enumerate(cluster.nodes)
    )
    for name, step in (
        ("spread and reach", stack.spread),
        ("scale to 6 and back", stack.scale),
        ("rolling update", lambda: stack.rolling_update(names[rolled])),
        ("read-your-writes", stack.read_your_writes),
        ("migration ran once", stack.migration_ran_once),
        ("hardening", stack.hardening),
        ("node loss", stack.node_loss),
    ):
        say(f"swarm check: {name}")
        with cluster.timings.measure(f"check: {name}"):
            step()
    return stack.figures
