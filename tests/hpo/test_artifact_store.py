"""The artifact store's contract, the same on a local folder and on S3 (a real
S3-compatible server): what one machine pushes another fetches into an empty cache,
a folder pushed again holds exactly the new files, missing keys fetch nothing, keys
outside the store are refused, and deleting a folder removes it everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.artifacts import LocalStore, open_store


@pytest.fixture(params=["local", "s3"])
def machines(request: pytest.FixtureRequest, tmp_path: Path):
    """Two machines' views of one store: (store on machine A, store on machine B)."""
    if request.param == "local":
        shared = tmp_path / "shared"
        return LocalStore(shared), LocalStore(shared)
    bucket = request.getfixturevalue("s3_artifacts")
    return (
        open_store(tmp_path / "a", bucket.url, bucket.options),
        open_store(tmp_path / "b", bucket.url, bucket.options),
    )


def test_what_one_machine_pushes_another_fetches(machines) -> None:
    a, b = machines
    checkpoint = a.path("study/trial-0/checkpoint.pt")
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights-1")
    a.push("study/trial-0/checkpoint.pt")
    fetched = b.fetch("study/trial-0/checkpoint.pt")
    assert fetched is not None and fetched.read_bytes() == b"weights-1"
    checkpoint.write_bytes(b"weights-2")  # overwritten in place: the next push replaces it
    a.push("study/trial-0/checkpoint.pt")
    fetched = b.fetch("study/trial-0/checkpoint.pt")
    assert fetched is not None and fetched.read_bytes() == b"weights-2"


def test_a_folder_is_fetched_whole_and_a_pushed_again_one_holds_only_its_files(machines) -> None:
    a, b = machines
    folder = a.path("study/trial-1/snapshots/step-3")
    (folder / "deep").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"m")
    (folder / "deep" / "optim.bin").write_bytes(b"o")
    a.push("study/trial-1/snapshots/step-3")
    got = b.fetch("study/trial-1/snapshots/step-3")
    assert got is not None
    assert sorted(str(p.relative_to(got)) for p in got.rglob("*") if p.is_file()) == [
        "deep/optim.bin",
        "model.bin",
    ]
    # the same step again (a retry wrote it anew): nothing of the first try stays
    (folder / "deep" / "optim.bin").unlink()
    (folder / "model.bin").write_bytes(b"m2")
    a.push("study/trial-1/snapshots/step-3")
    got = b.fetch("study/trial-1/snapshots/step-3")
    assert got is not None
    assert [p.name for p in got.rglob("*") if p.is_file()] == ["model.bin"]
    assert (got / "model.bin").read_bytes() == b"m2"


def test_a_missing_key_fetches_nothing_and_keys_outside_are_refused(machines) -> None:
    a, b = machines
    assert b.fetch("study/trial-9/checkpoint.pt") is None
    for outside in ("../elsewhere", "study/../../x"):
        with pytest.raises(ValueError):
            a.fetch(outside)


def test_deleting_a_folder_removes_it_from_the_store_and_the_cache(machines) -> None:
    a, b = machines
    for key in ("gone/trial-0/checkpoint.pt", "kept/trial-0/checkpoint.pt"):
        a.path(key).parent.mkdir(parents=True, exist_ok=True)
        a.path(key).write_bytes(b"x")
        a.push(key)
    assert b.fetch("gone/trial-0/checkpoint.pt") is not None
    b.delete_folder("gone")
    assert not b.path("gone").exists()
    # gone from the store: machine A's cached copy is never fetched again
    assert a.fetch("gone/trial-0/checkpoint.pt") is None
    assert b.fetch("kept/trial-0/checkpoint.pt") is not None
    b.delete_folder("never-was")  # nothing there: nothing to do
