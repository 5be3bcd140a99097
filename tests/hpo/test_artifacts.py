"""The artifact layout: a report's checkpoint names a place inside the trial's own folder,
and a worker resolves a stored key only under its own store."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.artifacts import checkpoint_key, relative_key, resolve_key, trial_folder


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("checkpoint.pt", "checkpoint.pt"),
        ("./snapshots/step-5/", "snapshots/step-5"),
        ("a/./b", "a/b"),
    ],
)
def test_a_relative_path_inside_the_folder_is_normalised(text: str, key: str) -> None:
    assert relative_key(text) == key


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("/etc", "absolute"),
        ("../other/trial-0", "leaves"),
        ("a/../../b", "leaves"),
        ("..", "leaves"),
        (".", "leaves"),
        ("", "must name"),
        ("  ", "must name"),
        ("C:/x", "drive letter"),
        ("a\\..\\b", "drive letter"),
    ],
)
def test_anything_outside_the_trials_folder_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        relative_key(text)


def test_a_checkpoint_key_lies_in_the_trials_folder() -> None:
    assert trial_folder("digits", 3) == "digits/trial-3"
    assert checkpoint_key("digits", 3, "snapshots/step-2") == "digits/trial-3/snapshots/step-2"
    with pytest.raises(ValueError):
        checkpoint_key("digits", 3, "../trial-4")


def test_keys_resolve_only_under_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "digits" / "trial-3").mkdir(parents=True)
    assert resolve_key(store, "digits/trial-3") == (store / "digits" / "trial-3").resolve()
    # An absolute path inside the store is what trials stored before keys were relative hold.
    inside = str(store / "digits" / "trial-3")
    assert resolve_key(store, inside) == Path(inside).resolve()
    for outside in ("/etc", "../elsewhere", str(tmp_path)):
        with pytest.raises(ValueError, match="outside the artifact store"):
            resolve_key(store, outside)


def test_a_link_out_of_the_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (tmp_path / "secret").mkdir()
    (store / "escape").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="outside the artifact store"):
        resolve_key(store, "escape")
