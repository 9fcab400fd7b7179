"""The benchmark's command line, request files, site helpers and run order (tools/bench, loadtest/openloop.py).

No services and no Docker: what these functions compute from their arguments.
"""

from __future__ import annotations

import json
from collections import Counter
from email.message import Message

import pytest

from tools.bench import site
from tools.bench.__main__ import parse_args
from tools.bench.compose import cpu_quota, probe_intervals
from tools.bench.load import cached_weights, mix_lines, request_line, write_lines, wrk_result
from tools.bench.measure import estimate_minutes, hit_ratio, rotated, serpentine, statuses_text, sum_counts
from tools.bench.render import errors_text

WEIGHTS = {"detail": 6, "list": 3, "uncached": 1}


def kind(line: str) -> str:
    path = line.split("\t")[1]
    return "detail" if path.startswith("/articles/") else "list" if path.startswith("/?page=") else "uncached"


def test_the_mix_follows_the_weights_and_carries_the_key() -> None:
    ids = list(range(500, 400, -1))
    lines = mix_lines(ids, 2000, "the-key", WEIGHTS)

    assert Counter(kind(line) for line in lines) == {"detail": 600, "list": 300, "uncached": 100}
    assert all(line.endswith("\tAuthorization: Bearer the-key") for line in lines if kind(line) == "uncached")
    assert all(int(line.split("/articles/")[1]) in ids for line in lines if kind(line) == "detail")
    assert lines == mix_lines(ids, 2000, "the-key", WEIGHTS)  # a fixed order


def test_the_cached_only_mix_keeps_the_cached_parts_in_proportion() -> None:
    ids = list(range(500, 400, -1))
    weights = cached_weights(WEIGHTS)
    assert weights == {"detail": 6, "list": 3, "uncached": 0}
    counts = Counter(kind(line) for line in mix_lines(ids, 2000, "the-key", weights))
    assert set(counts) == {"detail", "list"}
    assert counts["detail"] / counts["list"] == pytest.approx(2, rel=0.01)
    assert WEIGHTS == {"detail": 6, "list": 3, "uncached": 1}  # today's mix is left as it is


def test_write_lines_are_distinct_json_posts_with_the_key() -> None:
    lines = write_lines("k3y", "r2", 3)
    assert len(set(lines)) == 3
    method, path, *fields = lines[0].split("\t")
    assert (method, path) == ("POST", "/api/v1/articles")
    assert "Authorization: Bearer k3y" in fields and "Content-Type: application/json" in fields
    body = json.loads(fields[-1].removeprefix("body="))
    assert set(body) == {"title", "body"} and body["title"] == "Benchmark write r2-1"
    assert request_line("GET", "/", {"Cookie": "session=abc"}) == "GET\t/\tCookie: session=abc"
    with pytest.raises(ValueError):
        request_line("POST", "/x", body="two\nlines")


def test_wrk_results_keep_the_error_responses_by_status() -> None:
    line = (
        'WRK_JSON {"requests":200,"duration_us":2000000,"bytes":1,'
        '"errors":{"connect":0,"read":0,"write":0,"status":3,"timeout":1},'
        '"latency_us":{"p50":1000,"p90":2000,"p99":5000,"p999":9000,"max":12000,"mean":1500.5},'
        '"statuses":{"200":197,"503":3}}'
    )
    result = wrk_result(f"Running 2s test\n{line}\n")
    assert (result["rps"], result["mean_ms"], result["p99_ms"]) == (100.0, 1.5, 5.0)
    assert result["errors"] == 4 and result["error_kinds"] == {"status": 3, "timeout": 1}
    assert result["error_statuses"] == {"503": 3}
    assert statuses_text(result) == " (503: 3)"
    assert errors_text(result) == "4 (503: 3)"
    assert statuses_text({"statuses": {"201": 20, "429": 2}}) == " (429: 2)"  # openloop.py's
    assert errors_text({"errors": 0}) == "0"


def test_openloop_sends_a_body_with_its_length() -> None:
    openloop = pytest.importorskip("loadtest.openloop", reason="loadtest/ is not in the test image")
    raw = openloop.request_bytes('POST\t/api/v1/articles\tAuthorization: Bearer k\tbody={"title": "é"}', "nginx")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == '{"title": "é"}'.encode()
    assert head.split(b"\r\n") == [
        b"POST /api/v1/articles HTTP/1.1",
        b"Host: nginx",
        b"Authorization: Bearer k",
        f"Content-Length: {len(body)}".encode(),
    ]
    assert openloop.request_bytes("GET\t/", "nginx") == b"GET / HTTP/1.1\r\nHost: nginx\r\n\r\n"


def test_the_login_form_token_and_cookies_are_read() -> None:
    page = '<form><input id="csrf_token" name="csrf_token" type="hidden" value="tok.en"><input name="email"></form>'
    assert site.input_value(page, "csrf_token") == "tok.en"
    assert site.input_value("<p>no form</p>", "csrf_token") is None
    headers = Message()
    headers["Set-Cookie"] = "session=abc; HttpOnly; Path=/; SameSite=Lax"
    headers["Set-Cookie"] = "other=1; Secure"
    jar = site.cookies(headers, {"session": "old"})
    assert jar == {"session": "abc", "other": "1"}
    assert site.cookie_header(jar) == "session=abc; other=1"


def test_the_next_page_is_the_api_link_or_else_the_next_page_number() -> None:
    cursor = {"items": [1], "next": "http://127.0.0.1:8090/api/v1/articles?cursor=abc&per_page=100"}
    assert site.next_page(cursor, "/api/v1/articles?per_page=100") == (
        "/api/v1/articles?cursor=abc&per_page=100",
        "cursor",
    )
    relative = {"items": [1], "next": "/api/v1/articles?cursor=xyz&per_page=100"}
    assert site.next_page(relative, "/x")[0] == "/api/v1/articles?cursor=xyz&per_page=100"
    assert site.next_page({"items": [1], "next": None}, "/x") == (None, "cursor")
    numbered = {"items": [1], "page": 2, "pages": 10}
    assert site.next_page(numbered, "/api/v1/articles?per_page=100&page=2") == (
        "/api/v1/articles?per_page=100&page=3",
        "page",
    )
    assert site.next_page({"items": [1], "page": 10, "pages": 10}, "/x?page=10") == (None, "page")


def test_hit_ratio_counts_hit_and_shared() -> None:
    assert hit_ratio({"hit": 80, "shared": 12, "miss": 8}) == pytest.approx(0.92)
    assert hit_ratio({"hit": 5, "(none)": 5}) == pytest.approx(0.5)  # a response without the header is no hit
    assert hit_ratio({"(none)": 30}) is None  # the app does not say: not measured
    assert hit_ratio({}) is None
    assert sum_counts([{"hit": 1}, {"hit": 2, "miss": 1}]) == {"hit": 3, "miss": 1}


def test_rounds_alternate_their_order() -> None:
    assert serpentine([None, 1, 2, 4], 0) == [None, 1, 2, 4]
    assert serpentine([None, 1, 2, 4], 1) == [4, 2, 1, None]
    assert [rotated(["a", "b", "c"], i) for i in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


def test_options_are_parsed_and_the_main_project_is_refused() -> None:
    args = parse_args(["--replicas", "4,1,2,2", "--mix", "detail=1,uncached=1", "--loads", "0.5"])
    assert args.replicas == [1, 2, 4]
    assert args.mix == {"detail": 1, "list": 0, "uncached": 1}
    assert args.loads == [0.5]
    with pytest.raises(SystemExit):
        parse_args(["--project", "newsdesk"])
    with pytest.raises(SystemExit):
        parse_args(["--mix", "detail=0"])


def test_defaults_and_new_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BENCH_REPETITIONS", "BENCH_CPU_PERIOD", "BENCH_LARGE_ARTICLES", "BENCH_ARTICLES"):
        monkeypatch.delenv(name, raising=False)
    args = parse_args([])
    assert (args.repetitions, args.cpu_period, args.articles, args.large_articles) == (5, 10_000, 1_000, 1_000_000)
    assert (args.write_rate, args.probe_rate) == (1.0, 15.0)
    assert cpu_quota(args.cpus, args.cpu_period) == 2_500
    assert estimate_minutes(args) < 50, "make bench's defaults should stay under 50 minutes (estimated; ~40 measured)"

    monkeypatch.setenv("BENCH_REPETITIONS", "2")
    monkeypatch.setenv("BENCH_LARGE_ARTICLES", "20000")
    trial = parse_args(["--cpu-period", "100000"])
    assert (trial.repetitions, trial.large_articles, trial.cpu_period) == (2, 20_000, 100_000)
    assert estimate_minutes(trial) < estimate_minutes(args)

    for wrong in (
        ["--cpu-period", "500"],  # below the kernel's 1 ms
        ["--cpus", "0.05", "--cpu-period", "10000"],  # a quota under 1 ms
        ["--repetitions", "0"],
        ["--large-articles", "500"],  # not larger than the small size
    ):
        with pytest.raises(SystemExit):
            parse_args(wrong)
    assert parse_args(["--large-articles", "0", "--write-rate", "0"]).large_articles == 0


def test_the_report_reads_the_probe_intervals_from_the_override() -> None:
    # The web replicas' `healthcheck: !reset {}` has no interval; the dependencies' do.
    assert probe_intervals() == "29-53"
