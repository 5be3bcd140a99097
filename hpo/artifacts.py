"""Where a trial's artifacts live: one layout, shared by the server and the workers.

Every trial owns one folder of the artifact store, ``<study>/trial-<number>/``, and
everything it keeps (checkpoints, files) lies inside it. The server stores and hands out
*keys*, paths relative to the store's root (``digits/trial-3/checkpoint.pt``); only a
worker turns a key into a location, under its own ``HPO_ARTIFACT_DIR``. A client never
gives the server a path: a report names its checkpoint relative to the trial's own
folder (:func:`relative_key`), and the server files it under that folder
(:func:`checkpoint_key`), so nothing that can report can make a worker read, or copy,
anything outside the trial's own folder.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

__all__ = ["checkpoint_key", "relative_key", "resolve_key", "trial_folder"]


def trial_folder(study: str, number: int) -> str:
    """The key of a trial's own folder (study names are ``NAME_PATTERN``: no slash)."""
    return f"{study}/trial-{number}"


def relative_key(text: str) -> str:
    """``text`` as a checked path inside a trial's folder (``checkpoint.pt``,
    ``snapshots/step-5``), normalised; ``ValueError`` says why when it is absolute,
    climbs out (``..``), is empty, or uses backslashes or drive letters."""
    if not text or not text.strip():
        raise ValueError("must name a file or folder inside the trial's artifact folder")
    if "\\" in text or ":" in text:
        raise ValueError(
            f"{text!r} is not a relative path inside the trial's artifact folder "
            "(use '/' and no drive letter)"
        )
    path = PurePosixPath(text)
    if path.is_absolute():
        raise ValueError(
            f"{text!r} is absolute; a checkpoint lives only in the trial's own artifact "
            "folder: give its path relative to that folder (e.g. 'checkpoint.pt')"
        )
    parts = [p for p in path.parts if p != "."]
    if not parts or ".." in parts:
        raise ValueError(f"{text!r} leaves the trial's artifact folder")
    return "/".join(parts)


def checkpoint_key(study: str, number: int, relative: str) -> str:
    """The store key of ``relative`` (a :func:`relative_key`) in the trial's folder."""
    return f"{trial_folder(study, number)}/{relative_key(relative)}"


def resolve_key(root: Path, key: str) -> Path:
    """The location of ``key`` under the store ``root``; ``ValueError`` when it would
    lie outside ``root``. An absolute path inside ``root`` is accepted: trials stored
    before keys were relative hold one."""
    base = root.resolve()
    target = (base / key).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{key!r} lies outside the artifact store {base}")
    return target
