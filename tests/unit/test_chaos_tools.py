"""tools.chaos: what a failed request leaves in the report, and which time a promise is judged on."""

from __future__ import annotations

from typing import Any

from tools.chaos.__main__ import trace_failures
from tools.chaos.faults import Window
from tools.chaos.load import Outcome


class LoggedProject:
    """A project whose services logged ``logs`` (service -> text)."""

    def __init__(self, logs: dict[str, str]) -> None:
        self.logs = logs

    def compose(self, *args: str, **_: Any) -> str:
        return self.logs.get(args[-1], "")


def test_the_answer_time_leaves_out_the_generators_lag() -> None:
    late = Outcome(due=100.0, kind="write", latency=1.3, status=503, sent=100.5)
    assert late.done == 101.3
    assert round(late.answer_s, 3) == 0.8
    unsent = Outcome(due=100.0, kind="write", latency=0.4, status=201)  # no send time: from its due time
    assert round(unsent.answer_s, 3) == 0.4


def test_a_failed_request_is_traced_through_the_logs_by_its_request_id() -> None:
    nginx = (
        '{"request_id":"aaa","status":"201","upstream":"172.18.0.9:8000"}\n'
        '{"request_id":"bbb","status":"499","upstream":"172.18.0.7:8000","upstream_time":"10.001"}\n'
    )
    project = LoggedProject({"nginx": nginx, "web": '{"message": "slow", "request_id": "bbb"}\n'})
    window = Window(started=50.0)
    failed = [
        Outcome(due=60.0, kind="write", latency=10.2, status=None, error="ReadTimeout", sent=60.1, request_id="bbb"),
        Outcome(due=55.0, kind="home", latency=3.1, status=None, error="ConnectTimeout", sent=55.0, request_id="ccc"),
    ]
    traced = trace_failures(project, failed, window)  # type: ignore[arg-type]
    first, second = traced.removeprefix("traced: ").split(" | ")
    assert first.startswith("home due +5.0 s from the fault, ConnectTimeout after 3.10 s")
    assert first.endswith("in no log")
    assert "write due +10.0 s from the fault, ReadTimeout after 10.10 s, X-Request-ID bbb" in second
    assert '"status":"499"' in second and '"message": "slow"' in second and "aaa" not in second
