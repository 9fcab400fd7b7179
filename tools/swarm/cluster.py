"""A simulated Docker Swarm on this machine: N Docker-in-Docker nodes and a registry beside them.

Every container, volume and network it creates is named ``<prefix>-...`` (``ndswarm`` by
default) and labelled ``org.newsdesk.swarm=<prefix>``; ``down`` removes everything with the
name prefix, so a cluster left behind by a killed run is removed by the next ``down``.

Layout (3 nodes):

    host 127.0.0.1:5050 ──► <prefix>-registry:5000   (Debian's docker-registry, a volume)
    host 127.0.0.1:8980 ──► <prefix>-node-1:80       (the edge: nginx publishes there in host mode)
    host 127.0.0.1:8943 ──► <prefix>-node-1:443      (the edge, HTTPS)
    host 127.0.0.1:2475 ──► <prefix>-node-1:2375     (node 1's Docker API, plain TCP, for the host's
                                                      CLI: DOCKER_HOST=tcp://127.0.0.1:2475; loopback only)
    <prefix>-node-1  manager   labels newsdesk.db=true, newsdesk.edge=true
    <prefix>-node-2  worker    label  newsdesk.db-replica=true
    <prefix>-node-3  worker    no label: runs neither nginx nor a database (the node to kill)

The host engine pushes to ``127.0.0.1:5050/<repo>:<tag>`` (it trusts 127.0.0.0/8 as an insecure
registry); the nodes pull the same repository as ``<prefix>-registry:5000/<repo>:<tag>`` (their
engines run with ``--insecure-registry`` for it). The node image is built on demand by
``scripts/offline-images.sh --only swarm-node`` (cached by its recipe hash).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tools.shell import CommandError, http_get, run, say, wait_until

NODE_IMAGE = "newsdesk-local/swarm-node:20.10-bookworm"
LABEL = "org.newsdesk.swarm"
# What a nested dockerd needs when --privileged is refused (no CAP_SYS_RESOURCE on the host):
# every capability but that one, no seccomp/AppArmor profile, /proc and /sys unmasked.
NODE_SECURITY = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
]  # fmt: skip
# Node labels for placement: db and db-replica on different nodes, nginx on the edge node.
DB_LABEL, REPLICA_LABEL, EDGE_LABEL = "newsdesk.db", "newsdesk.db-replica", "newsdesk.edge"


class ClusterExists(CommandError):
    """Something named with the prefix exists: another cluster, or one a killed run left behind."""


@dataclass
class Timings:
    """Seconds each step took, in the order they ran (printed by the command line)."""

    steps: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = time.monotonic() - began


class Cluster:
    """The simulated swarm named ``prefix``: ``nodes`` nodes, the registry, one network."""

    def __init__(
        self,
        prefix: str = "ndswarm",
        nodes: int = 3,
        registry_port: int = 5050,
        edge_port: int = 8980,
        edge_https_port: int = 8943,
        api_port: int = 2475,
    ) -> None:
        if nodes < 1:
            raise ValueError("a swarm needs at least one node")
        self.prefix = prefix
        self.size = nodes
        self.registry_port = registry_port
        self.edge_port = edge_port
        self.edge_https_port = edge_https_port
        self.api_port = api_port
        self.network = f"{prefix}-net"
        self.registry = f"{prefix}-registry"
        self.timings = Timings()

    # --- names --------------------------------------------------------------------------------
    @property
    def nodes(self) -> list[str]:
        return [f"{self.prefix}-node-{n}" for n in range(1, self.size + 1)]

    @property
    def manager(self) -> str:
        return self.nodes[0]

    @property
    def host_registry(self) -> str:
        """The registry as the host engine reaches it (push)."""
        return f"127.0.0.1:{self.registry_port}"

    @property
    def node_registry(self) -> str:
        """The registry as the nodes reach it (pull, and image names in stack files)."""
        return f"{self.registry}:5000"

    def node_image(self, image: str) -> str:
        """The name the nodes pull ``image`` by, once pushed."""
        return f"{self.node_registry}/{repository(image)}"

    def labels_for(self, index: int) -> list[str]:
        """Placement labels of node ``index`` (0-based): db and edge on the manager, the replica on
        the second node (on the manager too in a one-node cluster)."""
        labels = []
        if index == 0:
            labels += [DB_LABEL, EDGE_LABEL]
        if index == min(1, self.size - 1):
            labels.append(REPLICA_LABEL)
        return labels

    @property
    def docker_host(self) -> str:
        """DOCKER_HOST for the host's CLI to talk to the manager (e.g. `docker stack deploy`)."""
        return f"tcp://127.0.0.1:{self.api_port}"

    # --- docker on the host and in the nodes ---------------------------------------------------
    @staticmethod
    def docker(*args: str, timeout: float = 300, check: bool = True) -> str:
        return run(["docker", *args], timeout=timeout, check=check).stdout

    def in_node(self, node: str, *args: str, timeout: float = 300, check: bool = True) -> str:
        """``docker ARGS`` against the engine of ``node``; its stdout."""
        return self.docker("exec", node, "docker", *args, timeout=timeout, check=check)

    # --- lifecycle ----------------------------------------------------------------------------
    def build_node_image(self) -> None:
        with self.timings.measure("node image (build or cache)"):
            run(["scripts/offline-images.sh", "--only", "swarm-node"], timeout=900)

    def up(self) -> None:
        """Start the registry and the nodes, init the swarm on node 1, join the others, label them."""
        self.refuse_if_exists()
        label = f"{LABEL}={self.prefix}"
        with self.timings.measure("cluster up"):
            self.docker("network", "create", "--label", label, self.network)
            self.docker(
                "run", "-d", "--name", self.registry, "--hostname", self.registry, "--label", label,
                "--network", self.network, "-p", f"127.0.0.1:{self.registry_port}:5000",
                "-v", f"{self.registry}-data:/var/lib/docker-registry", NODE_IMAGE, "registry",
            )  # fmt: skip
            for n, node in enumerate(self.nodes):
                publish, api = [], []
                if n == 0:
                    publish = ["-p", f"127.0.0.1:{self.edge_port}:80", "-p", f"127.0.0.1:{self.edge_https_port}:443"]
                    publish += ["-p", f"127.0.0.1:{self.api_port}:2375"]
                    # --tls=false: plain TCP on purpose (published on the host loopback only), no 15 s startup delay
                    api = ["-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2375", "--tls=false"]
                self.docker(
                    "run", "-d", "--name", node, "--hostname", node, "--label", label,
                    "--network", self.network, *NODE_SECURITY, *publish,
                    "-v", f"{node}-docker:/var/lib/docker", NODE_IMAGE,
                    "dockerd", "--insecure-registry", self.node_registry, *api,
                )  # fmt: skip
            for node in self.nodes:
                wait_until(functools.partial(self.engine_answers, node), 60, f"dockerd in {node}")
            self.in_node(self.manager, "swarm", "init", "--advertise-addr", "eth0")
            token = self.in_node(self.manager, "swarm", "join-token", "-q", "worker").strip()
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.size - 1)) as pool:
                joins = [
                    pool.submit(self.in_node, node, "swarm", "join", "--token", token, f"{self.manager}:2377")
                    for node in self.nodes[1:]
                ]
                for join in joins:
                    join.result()
            for n, node in enumerate(self.nodes):
                args = [arg for name in self.labels_for(n) for arg in ("--label-add", f"{name}=true")]
                if args:
                    self.in_node(self.manager, "node", "update", *args, node)
            wait_until(self.all_ready, 60, f"{self.size} nodes Ready in the swarm")
            wait_until(self.registry_answers, 30, f"the registry on {self.host_registry}")

    def engine_answers(self, node: str) -> bool:
        return bool(self.in_node(node, "info", "--format", "{{.ID}}", timeout=10).strip())

    def refuse_if_exists(self) -> None:
        """Raise ClusterExists when anything named with the prefix exists (nothing is removed)."""
        if found := self.leftovers():
            raise ClusterExists(
                f"{self.prefix}-* exists already ({found}); remove it with `python -m tools.swarm down`"
            )

    def all_ready(self) -> bool:
        states = self.in_node(self.manager, "node", "ls", "--format", "{{.Hostname}} {{.Status}}", timeout=10)
        ready = {line.split()[0] for line in states.splitlines() if line.endswith(" Ready")}
        return ready == set(self.nodes)

    def registry_answers(self) -> bool:
        status, _, _ = http_get(f"http://{self.host_registry}/v2/", timeout=3)
        return status == 200

    def push(self, images: list[str], pull: bool = True) -> dict[str, str]:
        """Push host images to the registry; with ``pull``, every node pulls them (in parallel), so a
        deploy starts without waiting for pulls. Returns {host image: the name the nodes use}."""
        names = {}
        with self.timings.measure("push"):
            for image in images:
                tag = f"{self.host_registry}/{repository(image)}"
                self.docker("tag", image, tag)
                try:
                    self.docker("push", tag, timeout=900)
                finally:
                    self.docker("rmi", tag, check=False)  # only the extra tag; the image stays
                names[image] = self.node_image(image)
        if pull:
            self.pull_everywhere(list(names.values()))
        return names

    def pull_everywhere(self, names: list[str]) -> None:
        """Every node pulls ``names`` from the registry, all at once."""
        workers = len(self.nodes) * len(names)
        with (
            self.timings.measure("pull (all nodes, in parallel)"),
            concurrent.futures.ThreadPoolExecutor(workers) as pool,
        ):
            pulls = [
                pool.submit(self.in_node, node, "pull", "-q", name, timeout=900)
                for node in self.nodes
                for name in names
            ]
            for done in pulls:
                done.result()

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks on the host named with the prefix."""
        found: dict[str, list[str]] = {}
        for kind, listing in (
            ("container", ["ps", "-a", "--format", "{{.Names}}"]),
            ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
            ("network", ["network", "ls", "--format", "{{.Name}}"]),
        ):
            names = [n for n in self.docker(*listing, "--filter", f"name={self.prefix}").split() if self.owns(n)]
            if names:
                found[kind] = names
        return found

    def owns(self, name: str) -> bool:
        return name == self.prefix or name.startswith(f"{self.prefix}-")

    def down(self) -> dict[str, list[str]]:
        """Remove every container, volume and network named with the prefix; what is left (nothing,
        unless something refused)."""
        with self.timings.measure("cluster down"):
            found = self.leftovers()
            if found.get("container"):
                # the nodes' volumes hold their engines' images and containers: nothing to stop gracefully
                self.docker("rm", "-f", "-v", *found["container"], check=False, timeout=120)
            found = self.leftovers()
            if found.get("volume"):
                self.docker("volume", "rm", "-f", *found["volume"], check=False)
            if found.get("network"):
                self.docker("network", "rm", *found["network"], check=False)
            return self.leftovers()

    @contextlib.contextmanager
    def running(self) -> Iterator[Cluster]:
        """The cluster for the duration of a ``with`` block: removed at its end, also on an error,
        Ctrl-C, or SIGTERM (when the caller turns SIGTERM into SystemExit, as __main__ does)."""
        self.refuse_if_exists()  # someone else's cluster of that name is not ours to remove
        try:
            self.up()
            yield self
        finally:
            left = self.down()
            if left:
                say(f"could not remove: {left}")

    # --- services -----------------------------------------------------------------------------
    def stack_deploy(self, name: str, directory: str, stack_file: str = "stack.yml") -> None:
        """``docker stack deploy`` from node 1, with ``directory`` (the stack file and the files its
        configs name) copied into it."""
        target = f"/srv/{name}"
        self.docker("exec", self.manager, "rm", "-rf", target)
        self.docker("cp", directory, f"{self.manager}:{target}")
        self.docker("exec", "-w", target, self.manager, "docker", "stack", "deploy", "--prune", "-c", stack_file, name)

    def task_addresses(self, service: str) -> dict[str, str]:
        """{task address on its overlay network: node} for the running tasks of ``service``."""
        ids = self.in_node(self.manager, "service", "ps", "-q", "--filter", "desired-state=running", service).split()
        if not ids:
            return {}
        fmt = "{{.Status.State}} {{.NodeID}} {{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}"
        hostnames = self.node_hostnames()
        out: dict[str, str] = {}
        for line in self.in_node(self.manager, "inspect", "--format", fmt, *ids).splitlines():
            state, node_id, *addresses = line.split()
            if state == "running":
                for address in addresses:
                    out[address.split("/")[0]] = hostnames.get(node_id, node_id)
        return out

    def node_hostnames(self) -> dict[str, str]:
        lines = self.in_node(self.manager, "node", "ls", "--format", "{{.ID}} {{.Hostname}}").splitlines()
        return dict(line.split() for line in lines if line.strip())

    def describe(self) -> str:
        return "\n".join(
            [
                f"swarm {self.prefix}: {self.size} node(s), manager {self.manager}",
                f"  registry: push to {self.host_registry}/<repo>:<tag>, nodes pull {self.node_registry}/<repo>:<tag>",
                f"  edge: 127.0.0.1:{self.edge_port} -> {self.manager}:80 (publish nginx there in host mode)",
                f"  a node's engine: docker exec {self.manager} docker node ls",
                f"  remove: python -m tools.swarm down{'' if self.prefix == 'ndswarm' else ' --prefix ' + self.prefix}",
            ]
        )


def repository(image: str) -> str:
    """``image`` without a registry host (``localhost:5000/a/b:t`` -> ``a/b:t``), with a tag."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image = rest
    return image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
