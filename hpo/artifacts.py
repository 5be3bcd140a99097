"""Where a trial's artifacts live: one layout, shared by the server and the workers.

Every trial owns one folder of the artifact store, ``<study>/trial-<number>/``, and
everything it keeps (checkpoints, files) lies inside it. The server stores and hands out
*keys*, paths relative to the store's root (``digits/trial-3/checkpoint.pt``); only a
worker turns a key into a location, under its own ``HPO_ARTIFACT_DIR``. A client never
gives the server a path: a report names its checkpoint relative to the trial's own
folder (:func:`relative_key`), and the server files it under that folder
(:func:`checkpoint_key`), so nothing that can report can make a worker read, or copy,
anything outside the trial's own folder.

The store itself (:func:`open_store`) is a local folder (``HPO_ARTIFACT_DIR``, the
default) or an object store (``HPO_ARTIFACT_URL=s3://bucket/prefix``, through fsspec;
``HPO_ARTIFACT_OPTIONS`` for its client, e.g. an S3-compatible endpoint). Workers
always train in a local folder of the same layout; with an object store that folder
is a cache: :meth:`LocalStore.push` uploads a checkpoint before the report that names
it (so the server never holds a key whose upload did not finish: an object appears
whole or not at all, and a folder is uploaded under a key no report named yet), and
:meth:`LocalStore.fetch` downloads one to resume from. Deleting a study deletes its
folder on both (:meth:`LocalStore.delete_folder`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "LocalStore",
    "RemoteStore",
    "checkpoint_key",
    "open_store",
    "relative_key",
    "resolve_key",
    "trial_folder",
]


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


class LocalStore:
    """The artifact store as a local (or shared) folder: keys are paths under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """Where ``key`` lies on this machine (``ValueError`` outside the store)."""
        return resolve_key(self.root, key)

    def push(self, key: str) -> None:
        """Make the file or folder at :meth:`path` of ``key`` durable in the store
        (here it already is)."""

    def fetch(self, key: str) -> Path | None:
        """The local location of ``key``'s file or folder, or None when it is gone."""
        path = self.path(key)
        return path if path.exists() else None

    def delete_folder(self, key: str) -> None:
        """Remove a folder (a study's, a trial's) and everything in it; nothing if absent."""
        shutil.rmtree(self.path(key), ignore_errors=True)


class RemoteStore(LocalStore):
    """An object store (any fsspec URL: ``s3://bucket/prefix``) with ``cache`` as the
    local working copy; the keys are the same."""

    def __init__(self, url: str, cache: Path, options: dict[str, Any] | None = None) -> None:
        import fsspec  # only where an object store is configured

        super().__init__(cache)
        self.url = url
        self.fs, self.base = fsspec.core.url_to_fs(url, **(options or {}))

    def _remote(self, key: str) -> str:
        relative_key(key)  # never a key outside the store's prefix
        return f"{self.base.rstrip('/')}/{key}"

    def push(self, key: str) -> None:
        local, remote = self.path(key), self._remote(key)
        if local.is_dir():
            # a folder is whole or absent: nothing of an earlier, torn try may stay
            self._remove(remote)
            self.fs.put(f"{local}/", remote, recursive=True)
        else:
            self.fs.put_file(str(local), remote)  # one object: replaced whole or not at all

    def fetch(self, key: str) -> Path | None:
        local, remote = self.path(key), self._remote(key)
        if not self.fs.exists(remote):
            return None
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.part")
        if self.fs.isdir(remote):
            self.fs.get(f"{remote}/", str(part), recursive=True)
        else:
            self.fs.get_file(remote, str(part))
        if local.is_dir():
            shutil.rmtree(local)
        os.replace(part, local)  # the cache holds a whole download or the old copy
        return local

    def delete_folder(self, key: str) -> None:
        super().delete_folder(key)
        self._remove(self._remote(key))

    def _remove(self, remote: str) -> None:
        try:
            self.fs.rm(remote, recursive=True)
        except FileNotFoundError:
            pass


def open_store(artifact_dir: Path, url: str | None, options: dict[str, Any] | None) -> LocalStore:
    """The store the settings name: ``url`` (an object store, ``artifact_dir`` its local
    cache) or the folder ``artifact_dir``."""
    if url:
        return RemoteStore(url, artifact_dir, options)
    return LocalStore(artifact_dir)
