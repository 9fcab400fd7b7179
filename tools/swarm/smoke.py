"""The smoke check of the simulated swarm (not the stack's test suite): a two-service stack.

``web`` is the bare-gunicorn app of ``make bench`` (``loadtest.hello:app``, from the app image;
the module is given to it as a Swarm config) with 4 replicas, at most 2 per node, reached by
name (``endpoint_mode: dnsrr``: the kernel has no IPVS for virtual IPs); ``nginx`` (our nginx
image) runs on the edge node, publishes port 80 in host mode, and proxies to
``server web:8000 resolve``, adding the replica it used as ``X-Upstream``. The check: the
replicas run on at least two nodes, and requests through nginx reach every one of them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tools.shell import ROOT, CommandError, http_get, say, wait_until
from tools.swarm.cluster import EDGE_LABEL, Cluster

STACK = "ndswarm-smoke"
WEB_REPLICAS = 4

STACK_FILE = """\
version: "3.8"
services:
  web:
    image: {app}
    command: ["gunicorn", "--worker-class", "gevent", "--workers", "1", "--bind", "0.0.0.0:8000",
              "--no-control-socket", "loadtest.hello:app"]
    init: true
    configs:
      - source: hello
        target: /srv/loadtest/hello.py
    deploy:
      replicas: {replicas}
      endpoint_mode: dnsrr
      placement:
        max_replicas_per_node: 2
      restart_policy:
        condition: any
  nginx:
    image: {nginx}
    configs:
      - source: nginx
        target: /etc/nginx/nginx.conf
    ports:
      - target: 80
        published: 80
        protocol: tcp
        mode: host
    deploy:
      replicas: 1
      endpoint_mode: dnsrr
      placement:
        constraints: ["node.labels.{edge} == true"]
configs:
  hello:
    file: ./hello.py
  nginx:
    file: ./nginx.conf
"""

NGINX_CONF = """\
user nginx;
worker_processes 1;
error_log /dev/stderr warn;
pid /var/run/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    # Docker's embedded DNS; with endpoint_mode dnsrr `web` resolves to every task's address.
    resolver 127.0.0.11 valid=1s ipv6=off;
    upstream web {
        zone web 64k;
        server web:8000 resolve;
        keepalive 8;
    }
    server {
        listen 80;
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Upstream $upstream_addr always;
        }
    }
}
"""


def write_stack(directory: Path, app: str, nginx: str) -> None:
    (directory / "stack.yml").write_text(
        STACK_FILE.format(app=app, nginx=nginx, replicas=WEB_REPLICAS, edge=EDGE_LABEL)
    )
    (directory / "nginx.conf").write_text(NGINX_CONF)
    (directory / "hello.py").write_text((ROOT / "loadtest" / "hello.py").read_text())


def check(cluster: Cluster, app_image: str, nginx_image: str) -> dict[str, object]:
    """Push, deploy, check the spread and the reach; the figures (raises CommandError on a failure)."""
    names = cluster.push([app_image, nginx_image])
    with tempfile.TemporaryDirectory(prefix="ndswarm-smoke.") as tmp:
        write_stack(Path(tmp), names[app_image], names[nginx_image])
        say(f"deploying stack {STACK} from {cluster.manager}")
        began = time.monotonic()
        with cluster.timings.measure("stack deploy (until every replica answered through nginx)"):
            cluster.stack_deploy(STACK, tmp)

            def all_web_tasks() -> dict[str, str] | None:
                tasks = cluster.task_addresses(f"{STACK}_web")
                return tasks if len(tasks) == WEB_REPLICAS else None

            tasks = wait_until(all_web_tasks, 180, f"{WEB_REPLICAS} running web tasks")
            url = f"http://127.0.0.1:{cluster.edge_port}/"
            wait_until(lambda: http_get(url, timeout=3)[0] == 200, 120, f"200 from nginx at {url}")
            reached, requests, failures = reach_all(url, set(tasks), deadline_s=60)
        deploy_s = time.monotonic() - began

    per_node: dict[str, int] = {}
    for node in tasks.values():
        per_node[node] = per_node.get(node, 0) + 1
    figures: dict[str, object] = {
        "replicas per node": dict(sorted(per_node.items())),
        "replicas reached through nginx": f"{len(reached & set(tasks))}/{len(tasks)}",
        "requests": requests,
        "failed requests": failures,
        "deploy to all reached s": round(deploy_s, 1),
    }
    if len(per_node) < 2:
        raise CommandError(f"the web replicas run on {len(per_node)} node(s), not 2 or more: {per_node}")
    if set(tasks) - reached:
        raise CommandError(f"nginx never used the replicas {sorted(set(tasks) - reached)}: {figures}")
    return figures


def reach_all(url: str, addresses: set[str], deadline_s: float) -> tuple[set[str], int, int]:
    """Requests through nginx until every replica address served one (or the deadline): the
    addresses seen, the requests sent, and how many of them failed."""
    seen: set[str] = set()
    requests = failures = 0
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and not addresses <= seen:
        requests += 1
        try:
            status, headers, _ = http_get(url, timeout=5)
        except OSError:
            failures += 1
            continue
        if status != 200:
            failures += 1
            continue
        # X-Upstream is "addr:port", or "a:p, b:p" after a retry on the next replica
        for upstream in headers.get("X-Upstream", "").split(","):
            seen.add(upstream.strip().rsplit(":", 1)[0])
    return seen, requests, failures
