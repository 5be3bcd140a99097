"""A real S3-compatible HTTP server for tests: moto's standalone server (a pytest
plugin; no mock of the client: s3fs talks HTTP to it as it would to S3 or MinIO).

Fixtures:

- ``s3_server`` (session): ``moto.server`` in its own process on a free loopback port.
- ``s3_artifacts`` (function): a fresh bucket, as the settings a service needs to use
  it (``artifact_url`` ``s3://<bucket>/artifacts`` and ``artifact_options``), plus an
  s3fs file system to look at what is stored.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_fixtures import ServiceError, free_port

__all__ = ["S3Bucket", "S3Server", "running_s3"]

#: moto checks no signature; the client still needs some credentials to sign with.
CREDENTIALS = {"key": "hpo-test", "secret": "hpo-test-secret"}


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def bucket(self) -> S3Bucket:
        name = f"hpo-{uuid.uuid4().hex[:12]}"
        answer = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        answer.raise_for_status()
        return S3Bucket(self, name)


@dataclass
class S3Bucket:
    server: S3Server
    name: str

    @property
    def url(self) -> str:
        """The ``HPO_ARTIFACT_URL`` of this bucket's ``artifacts/`` prefix."""
        return f"s3://{self.name}/artifacts"

    @property
    def options(self) -> dict[str, Any]:
        """The ``HPO_ARTIFACT_OPTIONS`` that reach the test server."""
        return {**CREDENTIALS, "client_kwargs": {"endpoint_url": self.server.endpoint}}

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(
            **CREDENTIALS,
            client_kwargs={"endpoint_url": self.server.endpoint},
            skip_instance_cache=True,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object under ``artifacts/<prefix>``, as keys of the artifact store."""
        fs = self.fs()
        root = f"{self.name}/artifacts/"
        try:
            found = fs.find(root + prefix)
        except FileNotFoundError:
            return []
        return sorted(path[len(root) :] for path in found)


@contextlib.contextmanager
def running_s3() -> Iterator[S3Server]:
    """moto's S3-compatible server on a free loopback port until the block ends."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="hpo-moto-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        )
    server = S3Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(server.endpoint, timeout=1)
                break
            except httpx.TransportError as err:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise ServiceError(f"moto server did not start: {tail}") from err
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with running_s3() as server:
        yield server


@pytest.fixture
def s3_artifacts(s3_server: S3Server) -> S3Bucket:
    return s3_server.bucket()
