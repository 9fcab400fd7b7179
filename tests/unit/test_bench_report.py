"""The benchmark package's report, chart and mix (tools/bench), from a small recorded sample.

No services: these run on the host and in the app image (whose `test` stage copies tools/).
"""

from __future__ import annotations

import copy
import json
import struct
from collections import Counter
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from tools.bench import chart, report
from tools.bench.__main__ import parse_args
from tools.bench.load import mix_lines

SAMPLE = Path(__file__).parent / "data" / "bench_scaling_sample.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def test_the_sample_has_the_documented_shape(sample: dict) -> None:
    report.validate(sample)
    assert set(sample["machine"]) >= {"cores", "cpu_model"}
    assert [run["replicas"] for run in sample["runs"]] == [1, 2, 4]
    assert {entry["load"] for entry in sample["fixed_rate"]} == {0.5, 0.8}


def test_writes_valid_json_table_and_png(sample: dict, tmp_path: Path) -> None:
    paths = report.write_reports(sample, tmp_path / "bench")

    assert {p.name for p in paths.values()} == {"scaling.json", "scaling.md", "scaling.png"}
    written = json.loads(paths["json"].read_text())
    assert written == sample
    report.validate(written)

    markdown = paths["md"].read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| replicas |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:3] == ["replicas", "req/s", "E(N)"]
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert [row.split("|")[1].strip() for row in table_rows][:3] == ["1", "2", "4"]
    assert all(len(row.strip("|").split("|")) == len(columns) for row in table_rows[:3])
    assert "proxy efficiency" in markdown and "p99 at 50% of peak" in markdown
    assert "![throughput and p99 by replica count](scaling.png)" in markdown

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

    assert png_size(data) == (1200, 540)
    image = imread(BytesIO(data), format="png")
    assert image.shape[:2] == (540, 1200)
    # The measured throughput, the ideal line, p99, p50 and the fixed-rate point are all drawn.
    for color in (chart.BLUE, chart.GRAY, chart.RED, chart.PURPLE, chart.GREEN):
        assert pixels_of(image, color) > 30, f"nothing drawn in {color}"
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50, "hardly more than a blank canvas"

    without_open_loop = copy.deepcopy(sample)
    without_open_loop["fixed_rate"] = []
    image = imread(BytesIO(chart.render_png(without_open_loop)), format="png")
    assert pixels_of(image, chart.GREEN) == 0


def test_efficiency_and_targets_are_computed_from_the_runs(sample: dict) -> None:
    rps = {run["replicas"]: run["rps"] for run in sample["runs"]}
    e = report.efficiency(sample)
    assert e[1] == pytest.approx(1.0)
    assert e[2] == pytest.approx(rps[2] / (2 * rps[1]))
    assert e[4] == pytest.approx(rps[4] / (4 * rps[1]))
    rows = {row["target"].split(" ")[0]: row for row in report.targets(sample)}
    assert rows["E(2)"]["met"] == (e[2] >= report.TARGET_E2)
    assert rows["E(4)"]["met"] == (e[4] >= report.TARGET_E4)
    baselines = sample["baselines"]
    proxy = baselines["via_nginx_replica_rps"] / baselines["direct_replica_rps"]
    assert report.proxy_efficiency(sample) == pytest.approx(proxy)


def test_a_report_without_a_documented_field_is_refused(sample: dict, tmp_path: Path) -> None:
    broken = copy.deepcopy(sample)
    del broken["runs"][1]["p99_ms"]
    broken["baselines"]["nginx_static_rps"] = "fast"
    with pytest.raises(report.ReportError, match=r"runs\[1\] lacks p99_ms.*nginx_static_rps"):
        report.write_reports(broken, tmp_path)
    assert not (tmp_path / "scaling.json").exists()


def test_readme_section_is_replaced_between_the_markers_only(sample: dict, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Project\n\n## Performance\n\nIntro stays.\n\n"
        "<!-- bench:start -->\nold table\n<!-- bench:end -->\n\n## Next\n"
    )
    assert report.update_readme(readme, sample)
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# Project\n\n## Performance\n\nIntro stays.\n\n<!-- bench:start -->\n")
    assert text.endswith("<!-- bench:end -->\n\n## Next\n")
    assert "| replicas | req/s | E(N) |" in text and "reports/bench/scaling.png" in text
    assert report.update_readme(readme, sample)  # idempotent
    assert readme.read_text() == text

    plain = tmp_path / "PLAIN.md"
    plain.write_text("# No markers\n")
    assert not report.update_readme(plain, sample)
    assert plain.read_text() == "# No markers\n"


def test_the_mix_follows_the_weights_and_carries_the_key() -> None:
    ids = list(range(500, 400, -1))
    lines = mix_lines(ids, 2000, "the-key", {"detail": 6, "list": 3, "uncached": 1})

    def kind(line: str) -> str:
        path = line.split("\t")[1]
        return "detail" if path.startswith("/articles/") else "list" if path.startswith("/?page=") else "uncached"

    assert Counter(kind(line) for line in lines) == {"detail": 600, "list": 300, "uncached": 100}
    assert all(line.endswith("\tAuthorization: Bearer the-key") for line in lines if kind(line) == "uncached")
    assert all(int(line.split("/articles/")[1]) in ids for line in lines if kind(line) == "detail")
    assert lines == mix_lines(ids, 2000, "the-key", {"detail": 6, "list": 3, "uncached": 1})  # a fixed order


def test_options_are_parsed_and_the_main_project_is_refused() -> None:
    args = parse_args(["--replicas", "4,1,2,2", "--mix", "detail=1,uncached=1", "--loads", "0.5"])
    assert args.replicas == [1, 2, 4]
    assert args.mix == {"detail": 1, "list": 0, "uncached": 1}
    assert args.loads == [0.5]
    with pytest.raises(SystemExit):
        parse_args(["--project", "newsdesk"])
    with pytest.raises(SystemExit):
        parse_args(["--mix", "detail=0"])
