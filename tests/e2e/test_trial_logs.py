"""Trial logs end to end: real local worker processes capture what the user's function
prints (Python, a child process, the descriptor itself) and its traceback, ship it to
the embedded server, and the trial page (system Chromium) and ``hpo trial logs`` show
it; a worker killed with SIGKILL mid-trial loses only its last seconds of output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpo.client import Client, NotFound
from hpo.embedded import EmbeddedService
from hpo.settings import Settings

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(sqlite_settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[EmbeddedService]:
    monkeypatch.setenv("HPO_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("HPO_LOG_INTERVAL", "0.5")
    with EmbeddedService(sqlite_settings, workers=1) as running:
        yield running


def _spec(make_spec, name: str, entrypoint: str, **params: Any) -> dict[str, Any]:
    return make_spec(
        name,
        objective={"metric": "score", "direction": "maximize"},
        space={"quality": {"type": "float", "low": 0.1, "high": 0.9}},
        budget={"max_trials": 1, "max_parallel": 1, "epochs": 1, "max_retries": 0},
        train={"entrypoint": f"helpers.trainables:{entrypoint}", "params": params},
    )


def _status(client: Client, study: str, number: int) -> str | None:
    """The trial's status, None while the scheduler has not created it yet."""
    try:
        return client.get_trial(study, number).status
    except NotFound:
        return None


def _hpo(service: EmbeddedService, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPO_SERVER_URL": service.url}
    hpo = str(Path(sys.executable).with_name("hpo"))
    return subprocess.run([hpo, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.browser
def test_a_failing_entrypoints_output_and_traceback_are_on_the_page_and_in_the_cli(
    service: EmbeddedService, make_spec, wait, chromium: Any
) -> None:
    with Client(service.url) as client:
        client.create_study(_spec(make_spec, "noisy", "noisy_failure"))
        wait(lambda: _status(client, "noisy", 0) == "failed", timeout=120)
        trial = client.get_trial("noisy", 0)
        assert "broken on purpose" in (trial.error or "")
        log = wait(
            lambda: (
                (found := client.trial_log("noisy", 0)).text.count("broken on purpose") and found
            ),
            timeout=30,
        )
    expected = (
        "hello from trial 0",
        "a warning on stderr",
        "a line from a child process",
        "straight to the descriptor",
        "Traceback (most recent call last)",
        "in _deep_failure",
        "ValueError: broken on purpose",
    )
    for line in expected:
        assert line in log.text, log.text
    assert log.running is False and log.attempts == [1]

    cli = _hpo(service, "trial", "logs", "noisy", "0")
    assert cli.returncode == 0, cli.stderr
    for line in expected:
        assert line in cli.stdout, cli.stdout

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{service.url}/studies/noisy/trials/0")
        page.wait_for_function(
            "document.getElementById('trial-log').textContent.includes('broken on purpose')",
            timeout=30_000,
        )
        shown = page.inner_text("#trial-log")
        for line in expected:
            assert line in shown
        shots = ROOT / "test-artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "trial-log.png"), full_page=True)
    finally:
        context.close()


def test_a_worker_killed_mid_trial_keeps_all_but_its_last_seconds_of_output(
    service: EmbeddedService, make_spec, wait, tmp_path: Path
) -> None:
    record = tmp_path / "ticks.txt"
    spec = _spec(make_spec, "ticking", "ticker", record=str(record), seconds=60)
    with Client(service.url) as client:
        client.create_study(spec)
        wait(lambda: record.exists() and len(record.read_text().splitlines()) >= 40, timeout=120)
        worker = client.get_trial("ticking", 0).worker
        assert worker is not None
        pid = int(worker.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        time.sleep(1.0)  # nothing more can arrive from the dead process
        log = client.trial_log("ticking", 0, attempt=1)
    printed = [line.split() for line in record.read_text().splitlines()]
    shipped = {line for line in log.text.splitlines() if line.startswith("tick ")}
    # Every tick printed more than two shipping intervals (0.5 s) and a margin before the
    # kill is on the server; what is lost is only the last seconds.
    old = [f"tick {n}" for n, at in printed if float(at) < killed_at - 2.0]
    assert len(old) >= 20
    missing = [t for t in old if t not in shipped]
    assert missing == []
    assert len(shipped) >= len(printed) - 30  # at most ~3 s of ticks lost


@pytest.mark.browser
def test_the_trial_page_follows_a_running_trials_log_live(
    service: EmbeddedService, make_spec, wait, chromium: Any, tmp_path: Path
) -> None:
    record = tmp_path / "live.txt"
    spec = _spec(make_spec, "live", "ticker", record=str(record), seconds=20)
    with Client(service.url) as client:
        client.create_study(spec)
        wait(lambda: record.exists(), timeout=120)  # running, and printing
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{service.url}/studies/live/trials/0")
        page.wait_for_function(
            "document.getElementById('log-state').textContent === 'following live'"
        )
        page.wait_for_function("document.getElementById('trial-log').textContent.includes('tick')")
        first = page.inner_text("#trial-log").count("tick")
        # No reload: new lines arrive while the trial runs.
        grown = "document.getElementById('trial-log').textContent.split('tick').length - 1"
        page.wait_for_function(f"{grown} > {first + 20}", timeout=30_000)
        ticks = [line for line in page.inner_text("#trial-log").splitlines() if line]
        numbers = [int(line.split()[1]) for line in ticks if line.startswith("tick ")]
        assert numbers == list(range(len(numbers)))  # in order, none twice, none missing
    finally:
        context.close()
