"""Shared fixtures of the worker tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Train on one torch thread (trials run in this process on a 2-core machine that
    also hosts the server and its databases); the previous count is restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Machines:
    """Where a worker keeps artifacts, one backend per test run (``artifact_backend``):
    ``local``, a folder every worker shares; ``s3``, the test S3 server's bucket, each
    worker with its own empty cache. :meth:`switch` moves the next attempt to another
    worker machine."""

    def __init__(self, kind: str, root: Path, monkeypatch: pytest.MonkeyPatch, bucket: Any) -> None:
        self.kind, self.root, self.monkeypatch, self.bucket = kind, root, monkeypatch, bucket
        self.count = 0

    def switch(self) -> Path:
        """Point the artifact folder at the next machine's; return it."""
        self.count += 1
        folder = self.root / ("shared" if self.kind == "local" else f"machine-{self.count}")
        self.monkeypatch.setenv("HPO_ARTIFACT_DIR", str(folder))
        return folder

    def stored(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` in the store itself (the bucket, or the shared folder)."""
        if self.bucket is not None:
            return self.bucket.keys(prefix)
        base = self.root / "shared"
        return sorted(str(p.relative_to(base)) for p in (base / prefix).rglob("*") if p.is_file())


@pytest.fixture(params=["local", "s3"])
def artifact_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Machines:
    """The same test on a shared local folder and on S3 (a real S3-compatible server),
    where each attempt may run on a machine whose cache is empty."""
    bucket = None
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_artifacts")
        monkeypatch.setenv("HPO_ARTIFACT_URL", bucket.url)
        monkeypatch.setenv("HPO_ARTIFACT_OPTIONS", json.dumps(bucket.options))
    machines = Machines(request.param, tmp_path / "artifacts", monkeypatch, bucket)
    machines.switch()
    return machines
