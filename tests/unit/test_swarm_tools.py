"""The simulated swarm's pure parts (tools/swarm): image names, placement labels, the smoke stack.

The cluster itself is exercised by `python -m tools.swarm smoke` (Docker-in-Docker nodes), not here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.swarm import smoke
from tools.swarm.cluster import DB_LABEL, EDGE_LABEL, REPLICA_LABEL, Cluster, repository


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("newsdesk-app:swarm", "newsdesk-app:swarm"),
        ("newsdesk-local/nginx:1.31-bookworm", "newsdesk-local/nginx:1.31-bookworm"),
        ("redis", "redis:latest"),
        ("127.0.0.1:5050/newsdesk-app:swarm", "newsdesk-app:swarm"),
        ("localhost/a/b", "a/b:latest"),
        ("registry.example.org/team/app:1", "team/app:1"),
    ],
)
def test_repository_drops_the_registry_host_and_keeps_a_tag(image: str, expected: str) -> None:
    assert repository(image) == expected


def test_nodes_pull_what_the_host_pushed_under_the_registry_name_they_resolve() -> None:
    cluster = Cluster(prefix="ndx", nodes=3, registry_port=5099)
    assert cluster.host_registry == "127.0.0.1:5099"
    assert cluster.node_image("127.0.0.1:5099/newsdesk-app:t") == "ndx-registry:5000/newsdesk-app:t"
    assert cluster.nodes == ["ndx-node-1", "ndx-node-2", "ndx-node-3"]


def test_db_and_replica_are_labelled_on_different_nodes_and_one_node_is_free() -> None:
    cluster = Cluster(nodes=3)
    labels = [cluster.labels_for(n) for n in range(3)]
    assert labels == [[DB_LABEL, EDGE_LABEL], [REPLICA_LABEL], []]


def test_a_one_node_cluster_carries_every_label() -> None:
    assert sorted(Cluster(nodes=1).labels_for(0)) == sorted([DB_LABEL, EDGE_LABEL, REPLICA_LABEL])


def test_only_names_with_the_prefix_and_a_dash_are_the_clusters() -> None:
    cluster = Cluster(prefix="ndswarm")
    assert cluster.owns("ndswarm-node-1") and cluster.owns("ndswarm")
    assert not cluster.owns("ndswarmother") and not cluster.owns("newsdesk_db-data")


def test_the_smoke_stack_reaches_web_by_name_and_publishes_nginx_on_its_node(tmp_path: Path) -> None:
    smoke.write_stack(tmp_path, "r:5000/app:t", "r:5000/nginx:t")
    stack = (tmp_path / "stack.yml").read_text()
    web, nginx = stack.split("\n  nginx:\n", 1)
    assert "image: r:5000/app:t" in web and '"loadtest.hello:app"]' in web
    assert f"replicas: {smoke.WEB_REPLICAS}" in web and "endpoint_mode: dnsrr" in web
    assert "image: r:5000/nginx:t" in nginx and "mode: host" in nginx and "endpoint_mode: dnsrr" in nginx
    assert f'constraints: ["node.labels.{EDGE_LABEL} == true"]' in nginx
    assert "server web:8000 resolve;" in (tmp_path / "nginx.conf").read_text()
    assert (tmp_path / "hello.py").read_text().startswith('"""The bare-gunicorn baseline')
