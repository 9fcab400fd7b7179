"""The /ops page with its graphs, rendered without services: the view is called in a request
whose user is a stand-in administrator (a real login needs the database: that path is in
tests/integration/test_ops_graphs.py). Prometheus is the fake of tests/unit/fake_prometheus.py,
or a port where nothing listens."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from types import SimpleNamespace

from flask import g
from markupsafe import escape

from app import create_app
from app.config import Settings
from app.services import graphs
from app.web import ops
from tests.support import UNIT_ENV
from tests.unit.fake_prometheus import closed_port, fake_prometheus, url_of


def ops_page(prometheus_url: str, query: str = "") -> tuple[int, str]:
    app = create_app(Settings.from_env({**UNIT_ENV, "PROMETHEUS_URL": prometheus_url}))
    with app.test_request_context(f"/ops{query}"):
        g.user = SimpleNamespace(id=1, is_admin=True, display_name="Admin")
        response = app.make_response(ops.index())
        return response.status_code, response.get_data(as_text=True)


def test_a_stopped_prometheus_is_named_and_the_snapshot_stays() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    status, html = ops_page(url)
    assert time.monotonic() - started < graphs.TOTAL_BUDGET
    assert status == 200
    assert "Prometheus is not running" in html and "<code>make monitoring</code> starts it" in html
    assert url in html, "the page names the URL it tried"
    assert "Web replicas" in html and "Databases" in html, "the live snapshot is still there"
    assert "<svg" not in html


def test_graphs_can_be_turned_off() -> None:
    status, html = ops_page("")
    assert status == 200
    assert "Graphs are off" in html and "PROMETHEUS_URL" in html
    assert "Web replicas" in html


def test_the_graphs_and_the_firing_alerts_are_shown() -> None:
    with fake_prometheus() as server:
        status, html = ops_page(url_of(server), "?range=1h")
        asked = [params for path, params in server.seen if path == "/api/v1/query_range"]  # type: ignore[attr-defined]
    assert status == 200
    assert len(asked) == len(graphs.PANELS) and {p["step"] for p in asked} == {"40"}
    assert html.count("<figure") == len(graphs.PANELS) == html.count("<figcaption>")
    assert html.count("<polyline") == 2 * len(graphs.PANELS), "web-1 and web-2 in every panel"
    for panel in graphs.PANELS:
        assert escape(panel.title) in html and escape(panel.description) in html
    # Alerts: firing ones only, their summary escaped.
    assert "WebDown" in html and "ReplicaLagging" in html and "HighErrorRate" not in html
    assert "A web replica stopped answering &lt;scrapes&gt;" in html
    assert "instance=db-replica" in html, "the labels that tell two alerts of a name apart"
    # The range switch: the hour is current, the 15 minutes a link.
    assert '<strong aria-current="page">Last hour</strong>' in html
    assert 'href="/ops?range=15m"' in html
    first_svg = html[html.index("<svg") : html.index("</svg>") + len("</svg>")]
    ET.fromstring(first_svg)


def test_no_data_and_no_alerts_say_so() -> None:
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    no_alerts = {"status": "success", "data": {"alerts": []}}
    with fake_prometheus(range_answer=empty, alerts_answer=no_alerts) as server:
        status, html = ops_page(url_of(server))
    assert status == 200
    assert "No alerts firing." in html
    assert html.count("No data in this range") == len(graphs.PANELS)
    assert "<polyline" not in html
    assert '<strong aria-current="page">Last 15 minutes</strong>' in html
