"""The benchmark package's report, chart and statistics (tools/bench), from recorded samples.

bench_report_sample.json is a short trial run (3 rounds of 4 s runs, 1, 2 and 4 replicas,
100,000 articles as the large size, on a machine busy with other work);
bench_scaling_sample.json is a report from before repetitions, which --render-only must
still draw. No services: these run on the host and in the app image (whose `test` stage
copies tools/).
"""

from __future__ import annotations

import copy
import json
import statistics
import struct
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from tools.bench import chart, render, report, stats

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "bench_report_sample.json"
LEGACY = DATA / "bench_scaling_sample.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sample() -> dict:
    return json.loads(SAMPLE.read_text())


@pytest.fixture
def legacy() -> dict:
    return json.loads(LEGACY.read_text())


def every_stat(value: object) -> list[dict]:
    """Every stat anywhere in a report."""
    if stats.is_stat(value):
        return [value]  # type: ignore[list-item]
    if isinstance(value, dict):
        return [found for item in value.values() for found in every_stat(item)]
    if isinstance(value, list):
        return [found for item in value for found in every_stat(item)]
    return []


def test_the_sample_has_the_documented_shape(sample: dict) -> None:
    report.validate(sample)
    assert sample["schema"] == report.SCHEMA
    assert [run["replicas"] for run in sample["scaling"]["mix"]] == sample["settings"]["replicas"]
    assert [run["replicas"] for run in sample["scaling"]["cached"]] == sample["settings"]["replicas"]
    assert {path["name"] for path in sample["data_size"]["paths"]} == {"html_list", "api_first", "api_deep"}
    found = every_stat(sample)
    assert len(found) > 50
    rounds = sample["settings"]["repetitions"]
    for stat in found:
        assert len(stat["values"]) == rounds
        assert stat["min"] == min(stat["values"]) and stat["max"] == max(stat["values"])
        assert stat["median"] == pytest.approx(statistics.median(stat["values"]), abs=1e-3)


def test_stats_keep_every_value_and_pair_ratios_by_round() -> None:
    assert stats.summarise([3, None, 1, 2]) == {"median": 2, "min": 1, "max": 3, "values": [3, 1, 2]}
    assert stats.summarise([None]) is None
    numerator = stats.summarise([10, 30, 20])
    denominator = stats.summarise([5, 10, 20])
    quotient = stats.ratio(numerator, denominator)
    assert quotient is not None
    assert quotient["median"] == pytest.approx(20 / 10)  # median over median...
    assert quotient["values"] == [2.0, 3.0, 1.0]  # ...and the spread from the rounds' own ratios
    assert (quotient["min"], quotient["max"]) == (1.0, 3.0)
    assert stats.ratio(numerator, None) is None
    assert stats.scaled(denominator, 2) == stats.summarise([10, 20, 40])
    assert not stats.is_stat({"median": 1, "min": 1, "max": 1, "values": []})
    assert stats.median_of_maps([{"a": 1.0, "b": 2.0}, {"a": 3.0}]) == {"a": 2.0, "b": 2.0}


def test_writes_valid_json_tables_and_png(sample: dict, tmp_path: Path) -> None:
    paths = render.write_reports(sample, tmp_path / "bench")

    assert {p.name for p in paths.values()} == {"scaling.json", "scaling.md", "scaling.png"}
    written = json.loads(paths["json"].read_text())
    assert written == sample
    report.validate(written)

    markdown = paths["md"].read_text()
    lines = markdown.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("| replicas |")]
    assert len(headers) == 2  # today's mix and cached only
    for start in headers:
        columns = [c.strip() for c in lines[start].strip("|").split("|")]
        assert columns[:3] == ["replicas", "req/s", "E(N)"]
        rows = [line for line in lines[start + 2 :] if line.startswith("| ")]
        rows = rows[: len(sample["settings"]["replicas"])]
        assert [row.split("|")[1].strip() for row in rows] == ["1", "2", "4"]
        assert all(len(row.strip("|").split("|")) == len(columns) for row in rows)
    # A stat shows its median and its spread.
    mix_one = sample["scaling"]["mix"][0]["rps"]
    assert f"| 1 | {mix_one['median']:,.0f} ({mix_one['min']:,.0f}-{mix_one['max']:,.0f}) |" in markdown
    for heading in ("Targets (judged on the medians)", "Cached only", "Reads with one write a second"):
        assert heading in markdown
    assert "Cost as the data grows" in markdown and "mean latency at one connection" in markdown
    assert "2.5 ms per 10 ms period" in markdown and "median of 3 repetitions" in markdown
    assert "proxy efficiency" in markdown and "p99 at 50% of peak" in markdown
    assert "![throughput, p99 and cost by data size](scaling.png)" in markdown

    assert paths["png"].read_bytes() == chart.render_png(sample)  # the same report, the same image


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    assert data[12:16] == b"IHDR", "the first chunk of a PNG is its header"
    return struct.unpack(">II", data[16:24])


def pixels_of(image: np.ndarray, color: str) -> int:
    """How many pixels have ``color`` (within the rounding of 8-bit channels)."""
    rgb = np.array(to_rgb(color))
    return int((np.abs(image[..., :3] - rgb) < 3 / 255).all(axis=-1).sum())


def test_the_chart_is_a_png_with_every_series_drawn(sample: dict) -> None:
    data = chart.render_png(sample)

    assert png_size(data) == (chart.WIDTH_PX, chart.HEIGHT_PX)
    image = imread(BytesIO(data), format="png")
    assert image.shape[:2] == (chart.HEIGHT_PX, chart.WIDTH_PX)
    # Both scenarios' throughput, the ideal line, p99, p50, the fixed-rate point and both data sizes.
    colors = (chart.BLUE, chart.ORANGE, chart.GRAY, chart.RED, chart.PURPLE, chart.GREEN)
    for color in (*colors, chart.SMALL_BAR, chart.LARGE_BAR):
        assert pixels_of(image, color) > 30, f"nothing drawn in {color}"
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50, "hardly more than a blank canvas"

    fewer = copy.deepcopy(sample)
    fewer["fixed_rate"] = []
    for path in fewer["data_size"]["paths"]:
        path["large"] = None
    image = imread(BytesIO(chart.render_png(fewer)), format="png")
    assert pixels_of(image, chart.GREEN) == 0
    assert pixels_of(image, chart.LARGE_BAR) == 0
    assert pixels_of(image, chart.SMALL_BAR) > 30


def test_efficiency_shares_and_targets_come_from_the_medians(sample: dict) -> None:
    mix = {run["replicas"]: run["rps"] for run in sample["scaling"]["mix"]}
    e = report.efficiency(sample)
    assert e[1] is not None and e[1]["median"] == pytest.approx(1.0)
    assert e[2] is not None and e[2]["median"] == pytest.approx(mix[2]["median"] / (2 * mix[1]["median"]), abs=1e-4)
    by_round = [two / (2 * one) for one, two in zip(mix[1]["values"], mix[2]["values"], strict=True)]
    assert e[2]["min"] == pytest.approx(min(by_round), abs=1e-4)
    assert e[2]["max"] == pytest.approx(max(by_round), abs=1e-4)

    bare = sample["baselines"]["bare_gunicorn_rps"]["median"]
    cached_one = sample["scaling"]["cached"][0]["rps"]["median"]
    cached_share = report.of_bare(sample, "cached")
    assert cached_share is not None and cached_share["median"] == pytest.approx(cached_one / bare, abs=1e-4)

    first = report.data_path(sample, "api_first")
    assert first is not None
    first_ratio = report.size_ratio(first)
    assert first_ratio is not None
    assert first_ratio["median"] == pytest.approx(
        first["large"]["mean_ms"]["median"] / first["small"]["mean_ms"]["median"], abs=1e-4
    )

    rows = report.targets(sample)
    assert len(rows) == 9
    by_start = {row["target"].split(" (")[0].split(" >")[0].split(":")[0]: row for row in rows}
    assert by_start["E(2) on the mix"]["met"] == (e[2]["median"] >= report.TARGET_E2)
    assert e[4] is not None and by_start["E(4) on the mix"]["met"] == (e[4]["median"] >= report.TARGET_E4)
    assert by_start["keyed API list, first page"]["met"] == (first_ratio["median"] <= report.TARGET_DATA_RATIO)
    hit = sample["read_write"]["hit_ratio"]["median"]
    hit_row = next(row for row in rows if row["target"].startswith("anonymous home page hit ratio"))
    assert hit_row["met"] == (hit > report.TARGET_HIT_RATIO)
    half = report.fixed_rate_at(sample, 0.5)
    assert half is not None
    p99_row = next(row for row in rows if row["target"].startswith("p99 at 50% of peak"))
    assert p99_row["met"] == (half["p99_ms"]["median"] <= report.TARGET_P99_AT_HALF_MS and half["errors"] == 0)
    assert "100,000 vs 1,000 articles" in by_start["keyed API list, first page"]["target"]


def test_a_target_without_its_run_is_not_measured(sample: dict) -> None:
    partial = copy.deepcopy(sample)
    partial["read_write"] = None
    partial["data_size"]["paths"][2]["large"] = None
    partial["data_size"]["large_error"] = "seeding failed: no space left"
    report.validate(partial)
    rows = {row["target"][:20]: row for row in report.targets(partial)}
    assert rows["anonymous home page "]["met"] is None
    deep = next(row for row in report.targets(partial) if "rows deep by cursor" in row["target"])
    assert deep["met"] is None and deep["value"] is None
    markdown = render.render_markdown(partial)
    assert "The large size was not measured: seeding failed: no space left" in markdown
    assert "Reads with one write a second" not in markdown


def test_an_open_loop_run_without_answers_misses_its_target(sample: dict, tmp_path: Path) -> None:
    swamped = copy.deepcopy(sample)
    half = next(entry for entry in swamped["fixed_rate"] if entry["load"] == 0.5)
    half.update(p50_ms=None, p99_ms=None, p999_ms=None, errors=1234)
    row = next(row for row in report.targets(swamped) if row["target"].startswith("p99 at 50% of peak"))
    assert row["met"] is False and row["value"] is None
    paths = render.write_reports(swamped, tmp_path)
    assert "| 50% |" in paths["md"].read_text()
    assert png_size(paths["png"].read_bytes()) == (chart.WIDTH_PX, chart.HEIGHT_PX)


def test_the_cached_only_open_loop_row_is_shown_but_not_judged(sample: dict) -> None:
    with_cached = copy.deepcopy(sample)
    half = next(entry for entry in with_cached["fixed_rate"] if entry["load"] == 0.5)
    calm = {**copy.deepcopy(half), "scenario": "cached", "errors": 0}
    calm["p99_ms"] = {"median": 1.0, "min": 1.0, "max": 1.0, "values": [1.0]}
    with_cached["fixed_rate"].insert(0, calm)
    report.validate(with_cached)
    assert report.fixed_rate_at(with_cached, 0.5) is half, "the target is the mix's"
    assert report.fixed_rate_at(with_cached, 0.5, "cached") is calm
    assert report.targets(with_cached) == report.targets(sample)
    markdown = render.render_markdown(with_cached)
    assert "| cached only | 50% |" in markdown and "| today's mix | 50% |" in markdown


def test_a_report_from_before_repetitions_is_read_as_one_round(legacy: dict, tmp_path: Path) -> None:
    current = report.upgrade(legacy)
    report.validate(current)
    assert current["settings"]["repetitions"] == 1
    one = current["scaling"]["mix"][0]
    rps = legacy["runs"][0]["rps"]
    assert one["rps"] == {"median": rps, "min": rps, "max": rps, "values": [rps]}
    assert current["scaling"]["cached"] == [] and current["data_size"] is None
    proxy = report.proxy_efficiency(current)
    via, direct = legacy["baselines"]["via_nginx_replica_rps"], legacy["baselines"]["direct_replica_rps"]
    assert proxy is not None and proxy["median"] == pytest.approx(via / direct, abs=1e-4)

    paths = render.write_reports(legacy, tmp_path)  # --render-only on an old scaling.json
    assert json.loads(paths["json"].read_text()) == legacy  # written as it was measured
    markdown = paths["md"].read_text()
    assert "Each figure was measured once." in markdown and "Cached only" not in markdown
    assert png_size(paths["png"].read_bytes()) == (chart.WIDTH_PX, chart.HEIGHT_PX)


def test_a_report_without_a_documented_field_is_refused(sample: dict, tmp_path: Path) -> None:
    broken = copy.deepcopy(sample)
    del broken["scaling"]["mix"][1]["p99_ms"]
    broken["baselines"]["nginx_static_rps"] = 1234.5  # a plain number where rounds were measured
    broken["data_size"]["paths"][0]["small"]["mean_ms"] = {"median": 1}
    with pytest.raises(
        report.ReportError, match=r"scaling\.mix\[1\] lacks p99_ms.*nginx_static_rps must be a stat.*paths\[0\]\.small"
    ):
        render.write_reports(broken, tmp_path)
    assert not (tmp_path / "scaling.json").exists()


def test_readme_section_is_replaced_between_the_markers_only(sample: dict, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Project\n\n## Performance\n\nIntro stays.\n\n"
        "<!-- bench:start -->\nold table\n<!-- bench:end -->\n\n## Next\n"
    )
    assert render.update_readme(readme, sample)
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# Project\n\n## Performance\n\nIntro stays.\n\n<!-- bench:start -->\n")
    assert text.endswith("<!-- bench:end -->\n\n## Next\n")
    assert "| replicas | req/s | E(N) |" in text and "reports/bench/scaling.png" in text
    assert "### Targets (judged on the medians)" in text
    assert "CPU by container" not in text  # the full report only
    assert render.update_readme(readme, sample)  # idempotent
    assert readme.read_text() == text

    plain = tmp_path / "PLAIN.md"
    plain.write_text("# No markers\n")
    assert not render.update_readme(plain, sample)
    assert plain.read_text() == "# No markers\n"
