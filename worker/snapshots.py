"""Checkpoint snapshots of a user's training function: what a report's step really holds.

A training function writes its checkpoint into ``reporter.checkpoint_dir`` (the working
folder) whenever it likes, and may go on writing after a report. If the worker dies
between a save and the report of that save, the working folder is ahead of what the
server knows: resuming from it would skip a step nobody reported. So a report that comes
after the folder changed freezes it first: a copy in ``snapshots/step-<N>`` next to the
working folder (built aside, then renamed into place, so a snapshot is whole or absent),
and that snapshot is the report's checkpoint. A later attempt starts from a copy of the
snapshot of the step the server stored, never from whatever the working folder holds.

Files unchanged since the previous snapshot are hard links to it (snapshots are never
written again), so an unchanged large file costs nothing; a changed one is copied.
Snapshots older than the newest one the server has acknowledged are removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["SNAPSHOTS", "Fingerprint", "Snapshots", "fingerprint", "snapshot_step"]

#: The folder of snapshots, in the trial's folder next to its working folder.
SNAPSHOTS = "snapshots"
_PREFIX = "step-"

#: relative path -> (size, mtime_ns, ctime_ns, inode) of each file of a folder.
Fingerprint = dict[str, tuple[int, int, int, int]]


def fingerprint(directory: Path) -> Fingerprint:
    """What is in ``directory`` now: a change between two reports means the function
    saved a checkpoint in that step. The inode catches a write-then-rename within one
    tick of a coarse file-system clock."""
    entries: Fingerprint = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed while we looked
                continue
            key = os.path.relpath(path, directory)
            entries[key] = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    return entries


def snapshot_step(path: Path) -> int | None:
    """The step of a snapshot folder (``step-<N>``), else None."""
    name = path.name
    if not name.startswith(_PREFIX) or not name[len(_PREFIX) :].isdigit():
        return None
    return int(name[len(_PREFIX) :])


class Snapshots:
    """The snapshots of one trial's working folder (``working``), kept beside it."""

    def __init__(self, working: Path) -> None:
        self.working = working
        self.folder = working.parent / SNAPSHOTS
        self._last: tuple[Path, Fingerprint] | None = None  # newest snapshot and its source

    def relative(self, snapshot: Path) -> str:
        """``snapshot``'s path relative to the trial's folder (what a report names)."""
        return f"{SNAPSHOTS}/{snapshot.name}"

    def take(self, step: int, current: Fingerprint) -> Path:
        """Freeze the working folder (whose files are ``current``) as step ``step``'s
        snapshot and return it; a snapshot of that step already there is replaced."""
        self.folder.mkdir(parents=True, exist_ok=True)
        building = self.folder / f".building-{uuid.uuid4().hex}"
        building.mkdir()
        for rel, seen in current.items():
            source, target = self.working / rel, building / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not self._link_unchanged(rel, seen, target):
                try:
                    shutil.copy2(source, target)
                except FileNotFoundError:  # removed since the fingerprint: not part of it
                    continue
        final = self.folder / f"{_PREFIX}{step}"
        if final.exists():  # a report of this step from an attempt the server refused
            shutil.rmtree(final)
        os.replace(building, final)
        self._last = (final, current)
        return final

    def _link_unchanged(self, rel: str, seen: tuple[int, int, int, int], target: Path) -> bool:
        if self._last is None:
            return False
        previous, source = self._last
        if source.get(rel) != seen:
            return False
        try:
            os.link(previous / rel, target)
        except OSError:  # no hard links here (or the file is gone): copy instead
            return False
        return True

    def prune(self, keep_from: int) -> None:
        """Remove the snapshots of steps before ``keep_from`` (the newest one the server
        acknowledged) and any half-built leftovers of a dead attempt."""
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            step = snapshot_step(entry)
            if (step is not None and step < keep_from) or entry.name.startswith(".building-"):
                shutil.rmtree(entry, ignore_errors=True)

    def keep_only(self, kept: Path | None) -> None:
        """At an attempt's start: remove every snapshot but ``kept`` (the one it resumes
        from, when it is one of these): newer ones were never reported, older ones are
        superseded."""
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            if kept is None or entry.resolve() != kept.resolve():
                shutil.rmtree(entry, ignore_errors=True)
