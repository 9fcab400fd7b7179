"""The simulated Docker Swarm on this machine (groundwork for ``make swarm-test``).

    python -m tools.swarm up [--nodes 3]        build the node image (cached), start the registry and
                                                N nodes, init + joins, placement labels; stays up
    python -m tools.swarm push IMAGE...         push host images to the registry, pull them on every node
    python -m tools.swarm down                  remove every container, volume and network named ndswarm-*
    python -m tools.swarm smoke [--keep]        up, push the app and nginx images, deploy a two-service
                                                stack, check it, and remove everything (also on failure,
                                                Ctrl-C or SIGTERM) unless --keep
    python -m tools.swarm deploy [--stack S]    `make swarm-deploy`: deploy/swarm/stack.yml to the swarm
                                                the Docker CLI points at (tools/swarm/deploy.py)
    python -m tools.swarm test [--keep]         `make swarm-test`: up, push, deploy the stack, the checks
                                                of tools/swarm/stacktest.py, the figures, down

Names: everything on the host is named ``<prefix>-...`` (``--prefix``, default ``ndswarm``). The
registry is published on 127.0.0.1:5050 (``--registry-port``) for the host to push to, node 1's
port 80 on 127.0.0.1:8980 (``--edge-port``). A node's engine is reached with
``docker exec ndswarm-node-1 docker ...``. Each run prints how long its steps took.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from dotenv import dotenv_values

from tools.shell import ROOT, CommandError, say
from tools.swarm import deploy, smoke, stacktest
from tools.swarm.cluster import Cluster


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.swarm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="ndswarm", help="name prefix of everything created (ndswarm)")
    parser.add_argument("--nodes", type=int, default=3, help="number of nodes (3)")
    parser.add_argument("--registry-port", type=int, default=5050, help="host loopback port of the registry")
    parser.add_argument("--edge-port", type=int, default=8980, help="host loopback port of node 1's port 80")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the cluster and leave it running")
    push = sub.add_parser("push", help="push host images to the registry and pull them on every node")
    push.add_argument("images", nargs="+")
    push.add_argument("--no-pull", action="store_true", help="only push")
    sub.add_parser("down", help="remove everything named with the prefix")
    smoke_cmd = sub.add_parser("smoke", help="up, push, deploy a two-service stack, check, down")
    smoke_cmd.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    deploy_cmd = sub.add_parser("deploy", help="deploy the stack to the swarm the Docker CLI points at")
    deploy_cmd.add_argument("--stack", default="newsdesk", help="stack name (newsdesk)")
    deploy_cmd.add_argument(
        "--resolve-image", default="always", choices=["always", "changed", "never"],
        help="docker stack deploy --resolve-image (always: pin each image's digest from the registry)",
    )  # fmt: skip
    test_cmd = sub.add_parser("test", help="the simulated cluster, the stack deployed on it, its checks")
    test_cmd.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    return parser.parse_args(argv)


def image_setting(name: str, default: str) -> str:
    """An image variable as compose sees it: the environment, then .env, then the default."""
    return os.environ.get(name) or dotenv_values(ROOT / ".env").get(name) or default


def print_timings(cluster: Cluster) -> None:
    if cluster.timings.steps:
        print(f"==> swarm {cluster.prefix} times:")
        for step, seconds in cluster.timings.steps.items():
            print(f"  {step:<58} {seconds:6.1f}s")


def run_check(cluster: Cluster, check: Callable[[Cluster], dict[str, object]], keep: bool, title: str) -> None:
    """Build the node image, run ``check`` on a cluster of its own and print its figures; the
    cluster is removed afterwards (also on failure or a signal) and must leave nothing behind,
    unless ``keep``."""
    cluster.build_node_image()
    if keep:
        cluster.refuse_if_exists()
        cluster.up()
        figures = check(cluster)
    else:
        with cluster.running():
            figures = check(cluster)
        left = cluster.leftovers()
        if left:
            raise CommandError(f"left behind after down: {left}")
        figures["left behind after down"] = "nothing"
    print(f"==> {title} passed:")
    for key, value in figures.items():
        print(f"  {key}: {value}")


def on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    cluster = Cluster(args.prefix, args.nodes, args.registry_port, args.edge_port)
    try:
        if args.command == "up":
            cluster.refuse_if_exists()
            cluster.build_node_image()
            try:
                cluster.up()
            except BaseException:
                cluster.down()  # a half-built cluster is not left behind
                raise
            print(cluster.describe())
        elif args.command == "push":
            for image, name in cluster.push(args.images, pull=not args.no_pull).items():
                print(f"{image} -> {name}")
        elif args.command == "down":
            left = cluster.down()
            if left:
                raise CommandError(f"could not remove: {left}")
            say(f"nothing named {args.prefix}-* is left (containers, volumes, networks)")
        elif args.command == "deploy":
            deployer = deploy.Deployer(args.stack, resolve_image=args.resolve_image)
            for step, seconds in deployer.deploy().items():
                print(f"  {step:<58} {seconds:6.1f}s")
            say(f"stack {args.stack} deployed: docker stack services {args.stack}")
        elif args.command == "test":
            run_check(cluster, stacktest.check, args.keep, "swarm test")
        elif args.command == "smoke":
            app = image_setting("APP_IMAGE", "newsdesk-app:latest")
            nginx = image_setting("NGINX_IMAGE", "nginx:1.28")
            run_check(cluster, lambda running: smoke.check(running, app, nginx), args.keep, "swarm smoke check")
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # the cluster's own `finally` has removed it
        return 130
    finally:
        print_timings(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
