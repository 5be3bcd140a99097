"""The throughput and growth benchmarks run end to end in smoke mode (our service on
SQLite and on PostgreSQL + Redis with real workers, Optuna beside it) and print their
tables. No timing assertions: measuring is the benchmarks' job, not a test's."""

from __future__ import annotations

from helpers.bench import run_benchmark


def _rows(lines: list[str], header: str) -> list[list[str]]:
    """The rows of the table under ``header`` (up to a blank line)."""
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[at + 1 :]:
        if not line:
            break
        if not line.startswith("growth"):
            rows.append(line.split())
    return rows


def test_throughput_smoke_prints_ours_and_the_peer_per_backend_and_strategy() -> None:
    out = run_benchmark("throughput", "--smoke", timeout=600)
    lines = out.splitlines()
    assert lines[0].startswith("== throughput: 40 trials, 2 workers")
    rows = _rows(lines, "backend")
    assert [(r[0], r[2]) for r in rows] == [
        ("embedded", "(random)"),
        ("embedded", "(bayes)"),
        ("fleet", "(random)"),
        ("fleet", "(bayes)"),
    ]
    for row in rows:
        ours, peer, ratio, server_ms, worker_ms = (float(row[i]) for i in (3, 6, 7, 8, 9))
        assert ours > 0 and peer > 0
        assert abs(ratio - ours / peer) <= 0.01 * ratio + 0.01  # printed rounded
        assert server_ms > 0 and worker_ms > 0  # CPU was spent, and measured
    assert [r[5] for r in rows] == ["(RandomSampler)", "(TPESampler)"] * 2

    # CPU per trial by role, ours then the peer for each row above
    cpu = _rows(lines, "backend   run")
    sides = [(r[0], side) for r in rows for side in ("ours", "optuna")]
    assert [(r[0], r[1]) for r in cpu] == sides
    for row, (backend, side) in zip(cpu, sides, strict=True):
        server, workers, services, total, ceiling, rate = row[3:9]
        assert (server == "-") == (side == "optuna")  # only ours has a server
        parts = [float(x) for x in (server, workers, services) if x != "-"]
        assert all(x >= 0 for x in parts) and float(workers) > 0
        assert abs(float(total) - sum(parts)) <= 0.02
        if backend == "fleet":
            assert float(services) > 0  # PostgreSQL (and Redis) did the storing
        else:
            assert services == "-"  # SQLite stores in-process: no service to count
        assert float(ceiling) > 0 and float(rate) > 0


def test_growth_smoke_prints_both_windows_and_the_ratio() -> None:
    out = run_benchmark("growth", "--smoke", timeout=300)
    lines = out.splitlines()
    assert lines[0].startswith("== growth: 60 trials (peer 60), 2 workers")
    rows = _rows(lines, "run")
    assert [r[0] for r in rows] == ["ours", "optuna"]
    for row in rows:
        trials, overall, first, last, growth, cpu_first, cpu_last, cpu_growth = map(
            float, row[2:10]
        )
        assert trials == 60 and overall > 0 and first > 0 and last > 0
        assert abs(growth - last / first) <= 0.01 * growth + 0.01
        assert cpu_first > 0 and cpu_last > 0  # CPU was spent in both windows, and read
        assert abs(cpu_growth - cpu_first / cpu_last) <= 0.01 * cpu_growth + 0.01
    for label in ("growth ratio, ours / peer:", "cpu growth ratio, ours / peer:"):
        line = next(line for line in lines if line.startswith(label))
        assert float(line.rsplit(":", 1)[1]) > 0
    server = next(line for line in lines if line.startswith("ours, server CPU / worker CPU"))
    first, last, growth = (float(part.split()[-1]) for part in server.split(":", 1)[1].split(","))
    assert first > 0 and last > 0
    assert abs(growth - first / last) <= 0.01 * growth + 0.01
