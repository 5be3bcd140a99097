"""A worker killed (SIGKILL) while it uploads a checkpoint to S3 leaves nothing torn to
resume from: the report naming that checkpoint goes out only after the upload, so the
server still holds the step before it, and the retry, on another machine with an
empty cache, resumes from that whole checkpoint. Real server, real worker process,
real S3-compatible server (moto's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.services import embedded_settings

from hpo.client import Client
from hpo.embedded import EmbeddedService
from worker.job import run_trial

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
MB = 256  # large enough that its upload outlasts the moment the test kills it


def _wait(predicate, timeout: float = 60.0, what: str = ""):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.usefixtures("one_torch_thread")
def test_a_kill_mid_upload_is_never_resumed_from(tmp_path: Path, s3_artifacts, monkeypatch) -> None:
    options = json.dumps(s3_artifacts.options)
    settings = embedded_settings(
        tmp_path / "server",
        heartbeat_timeout=3.0,
        reconcile_interval=0.5,
        artifact_url=s3_artifacts.url,
        artifact_options=s3_artifacts.options,
    )
    with EmbeddedService(settings, workers=0) as service, Client(service.url) as sdk:
        sdk.create_study(
            {
                "name": "torn",
                "objective": {"metric": "score", "direction": "maximize"},
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                "budget": {"max_trials": 1, "max_parallel": 1, "epochs": 4},
                "train": {"entrypoint": "helpers.trainables:big_second_step", "params": {"mb": MB}},
            }
        )
        trial_id = _wait(lambda: [t.id for t in sdk.list_trials("torn", status="queued")])[0]
        first = tmp_path / "machine-1"
        env = {
            **os.environ,
            "HPO_SERVER_URL": service.url,
            "HPO_ARTIFACT_URL": s3_artifacts.url,
            "HPO_ARTIFACT_OPTIONS": options,
            "HPO_ARTIFACT_DIR": str(first),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
        }
        worker = subprocess.Popen(
            [sys.executable, "-c", f"from worker.job import run_trial; run_trial({trial_id})"],
            cwd=ROOT,
            env=env,
        )
        try:
            # step 2's snapshot is whole on the worker's disk; kill once its upload is
            # under way (an S3 multipart upload begun, not completed)
            step2 = first / "torn" / "trial-0" / "snapshots" / "step-2"
            _wait(step2.exists, what="the step-2 snapshot")
            fs = s3_artifacts.fs()
            _wait(
                lambda: fs.call_s3("list_multipart_uploads", Bucket=s3_artifacts.name).get(
                    "Uploads"
                ),
                what="the step-2 upload to begin",
            )
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        stored = s3_artifacts.keys("torn/")
        assert "torn/trial-0/snapshots/step-2/weights.bin" not in stored, (
            "the upload finished before the kill: the test proves nothing (raise MB)"
        )
        # step 2 was never reported: the server holds step 1's checkpoint, uploaded whole
        assert [r.step for r in sdk.get_trial("torn", 0).reports] == [1]
        assert "torn/trial-0/snapshots/step-1/state.txt" in stored

        # the reaper retries it; the retry runs on another machine, its cache empty
        _wait(lambda: sdk.get_trial("torn", 0).status == "queued", what="the retry")
        monkeypatch.setenv("HPO_SERVER_URL", service.url)
        monkeypatch.setenv("HPO_ARTIFACT_URL", s3_artifacts.url)
        monkeypatch.setenv("HPO_ARTIFACT_OPTIONS", options)
        monkeypatch.setenv("HPO_ARTIFACT_DIR", str(tmp_path / "machine-2"))
        assert run_trial(trial_id, client=sdk) == "completed"
        trial = sdk.get_trial("torn", 0)
    second = [r for r in trial.reports if r.attempt == 2]
    assert [r.step for r in second] == [2, 3, 4]
    assert {r.metrics["resumed_from"] for r in second} == {1}
    assert {r.metrics["whole"] for r in second} == {1}
