"""The report writer of `make bench` (scripts/bench_report.py), from a small recorded sample.

No services and no plotting library: the PNG comes from scripts/bench_chart.py (zlib only),
so these run in the app image too (the `test` service mounts ./scripts at /srv/scripts).
"""

from __future__ import annotations

import copy
import json
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
SAMPLE = Path(__file__).parent / "data" / "bench_scaling_sample.json"

if not (SCRIPTS / "bench_report.py").exists():  # pragma: no cover - a broken test setup, not a skip
    raise RuntimeError(f"{SCRIPTS}/bench_report.py is missing: the test container must mount ./scripts")
sys.path.insert(0, str(SCRIPTS))

import bench_chart  # noqa: E402
import bench_report  # noqa: E402


@pytest.fixture
def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, checking each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        pos += 12 + length
    return chunks


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of an 8-bit RGB PNG with filter 0 (what bench_chart writes)."""
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color_type, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == height * stride
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows), "unexpected PNG filter type"
    return width, height, [row[1:] for row in rows]


def colors_in(rows: list[bytes]) -> set[tuple[int, int, int]]:
    return {tuple(row[i : i + 3]) for row in rows for i in range(0, len(row), 3)}


def test_the_sample_has_the_documented_shape(sample: dict) -> None:
    bench_report.validate(sample)
    assert set(sample["machine"]) >= {"cores", "cpu_model"}
    assert [run["replicas"] for run in sample["runs"]] == [1, 2, 4]
    assert {entry["load"] for entry in sample["fixed_rate"]} == {0.5, 0.8}


def test_writes_valid_json_table_and_png(sample: dict, tmp_path: Path) -> None:
    paths = bench_report.write_reports(sample, tmp_path / "bench")

    assert {p.name for p in paths.values()} == {"scaling.json", "scaling.md", "scaling.png"}
    written = json.loads(paths["json"].read_text())
    assert written == sample
    bench_report.validate(written)

    markdown = paths["md"].read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| replicas |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:3] == ["replicas", "req/s", "E(N)"]
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert [row.split("|")[1].strip() for row in table_rows][:3] == ["1", "2", "4"]
    assert all(len(row.strip("|").split("|")) == len(columns) for row in table_rows[:3])
    assert "proxy efficiency" in markdown and "p99 at 50% of peak" in markdown
    assert "![throughput and p99 by replica count](scaling.png)" in markdown

    width, height, rows = decode_png(paths["png"].read_bytes())
    assert (width, height) == (1200, 540)
    colors = colors_in(rows)
    # The measured throughput, the ideal line, p99 and the fixed-rate point are all drawn.
    assert {bench_chart.BLUE, bench_chart.GRAY, bench_chart.RED, bench_chart.GREEN} <= colors


def test_efficiency_and_targets_are_computed_from_the_runs(sample: dict) -> None:
    rps = {run["replicas"]: run["rps"] for run in sample["runs"]}
    e = bench_report.efficiency(sample)
    assert e[1] == pytest.approx(1.0)
    assert e[2] == pytest.approx(rps[2] / (2 * rps[1]))
    assert e[4] == pytest.approx(rps[4] / (4 * rps[1]))
    rows = {row["target"].split(" ")[0]: row for row in bench_report.targets(sample)}
    assert rows["E(2)"]["met"] == (e[2] >= bench_report.TARGET_E2)
    assert rows["E(4)"]["met"] == (e[4] >= bench_report.TARGET_E4)
    baselines = sample["baselines"]
    proxy = baselines["via_nginx_replica_rps"] / baselines["direct_replica_rps"]
    assert bench_report.proxy_efficiency(sample) == pytest.approx(proxy)


def test_a_report_without_a_documented_field_is_refused(sample: dict, tmp_path: Path) -> None:
    broken = copy.deepcopy(sample)
    del broken["runs"][1]["p99_ms"]
    broken["baselines"]["nginx_static_rps"] = "fast"
    with pytest.raises(bench_report.ReportError, match=r"runs\[1\] lacks p99_ms.*nginx_static_rps"):
        bench_report.write_reports(broken, tmp_path)
    assert not (tmp_path / "scaling.json").exists()


def test_readme_section_is_replaced_between_the_markers_only(sample: dict, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Project\n\n## Performance\n\nIntro stays.\n\n"
        "<!-- bench:start -->\nold table\n<!-- bench:end -->\n\n## Next\n"
    )
    assert bench_report.update_readme(readme, sample)
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# Project\n\n## Performance\n\nIntro stays.\n\n<!-- bench:start -->\n")
    assert text.endswith("<!-- bench:end -->\n\n## Next\n")
    assert "| replicas | req/s | E(N) |" in text and "reports/bench/scaling.png" in text
    assert bench_report.update_readme(readme, sample)  # idempotent
    assert readme.read_text() == text

    plain = tmp_path / "PLAIN.md"
    plain.write_text("# No markers\n")
    assert not bench_report.update_readme(plain, sample)
    assert plain.read_text() == "# No markers\n"


@pytest.mark.parametrize(
    ("value", "top", "step"), [(0.0, 1.0, 0.2), (7, 8, 2), (95, 100, 20), (380, 400, 100), (1234, 1250, 250)]
)
def test_axis_maximum_is_a_round_number_above_the_data(value: float, top: float, step: float) -> None:
    assert bench_chart.nice_ceiling(value) == (top, step)
