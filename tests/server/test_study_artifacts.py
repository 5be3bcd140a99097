"""Deleting a study deletes its artifacts, on a local store and on S3 (a real
S3-compatible server), on both databases; another study's stay."""

from __future__ import annotations

import httpx
import pytest

from hpo.embedded import EmbeddedService


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_deleting_a_study_deletes_its_artifacts_and_only_its(
    settings, make_spec, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "s3":
        bucket = request.getfixturevalue("s3_artifacts")
        settings = settings.model_copy(
            update={"artifact_url": bucket.url, "artifact_options": bucket.options}
        )
    store = settings.artifact_store()
    with (
        EmbeddedService(settings, workers=0) as service,
        httpx.Client(base_url=f"{service.url}/api/v1", timeout=30) as api,
    ):
        for name in ("doomed", "kept"):
            assert api.post("/studies", json=make_spec(name)).status_code == 201
            for key in (f"{name}/trial-0/checkpoint.pt", f"{name}/trial-1/snapshots/step-1/a"):
                store.path(key).parent.mkdir(parents=True, exist_ok=True)
                store.path(key).write_bytes(b"x")
                store.push(key)
        assert api.delete("/studies/doomed").status_code == 204
        assert api.get("/studies/doomed").status_code == 404
    assert store.fetch("doomed/trial-0/checkpoint.pt") is None
    assert store.fetch("doomed/trial-1/snapshots/step-1/a") is None
    assert not store.path("doomed").exists()
    kept = store.fetch("kept/trial-0/checkpoint.pt")
    assert kept is not None and kept.read_bytes() == b"x"
    if backend == "s3":
        assert bucket.keys("doomed/") == []
        assert bucket.keys("kept/") == [
            "kept/trial-0/checkpoint.pt",
            "kept/trial-1/snapshots/step-1/a",
        ]
