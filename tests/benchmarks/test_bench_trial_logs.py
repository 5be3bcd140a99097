"""The trial-log benchmark runs end to end in smoke mode and prints its two tables: the
ingest figures with the ratio over the file floor, and the page load. No timing
assertions; the structure and the bound are what is checked."""

from __future__ import annotations

from helpers.bench import run_benchmark


def _rows(lines: list[str], header: str) -> dict[str, str]:
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[at + 1 :]:
        if line.startswith("=="):
            break
        name, value = line.split()
        rows[name] = value
    return rows


def test_smoke_prints_the_trial_log_tables() -> None:
    out = run_benchmark("trial_logs", "--smoke", timeout=400)
    lines = out.splitlines()
    assert lines[0] == "== trial logs: 2 trials x 2 MB shipped, cap 1 MiB per attempt"
    ingest = _rows(lines, "what ")
    assert list(ingest) == [
        "server_cpu_ms_per_MB",
        "ingest_MB_per_s",
        "rows_kept",
        "bytes_kept",
        "floor_cpu_ms_per_MB",
        "ratio_ours_over_floor",
    ]
    assert float(ingest["server_cpu_ms_per_MB"]) > 0 and float(ingest["ingest_MB_per_s"]) > 0
    # 4 MB shipped through a 1 MiB cap per attempt: at most the cap and two chunks each.
    assert int(ingest["bytes_kept"].replace(",", "")) <= 2 * ((1 << 20) + 2 * 256 * 1024)
    ratio = float(ingest["server_cpu_ms_per_MB"]) / float(ingest["floor_cpu_ms_per_MB"])
    assert abs(float(ingest["ratio_ours_over_floor"]) - ratio) <= 0.05 * ratio + 0.1
    page_at = next(i for i, line in enumerate(lines) if line.startswith("== page load"))
    page = dict(line.split() for line in lines[page_at + 1 :])
    assert list(page) == [
        "page_html_ms",
        "log_request_ms",
        "log_response_bytes",
        "chromium_until_shown_ms",
    ]
    assert 1 << 20 <= int(page["log_response_bytes"].replace(",", "")) <= 2 << 20
