"""The server's one cache mechanism: bounded, thread-safe maps from a study to objects
derived from its rows (its history as strategy records, its counts, its finished
learning curves, its parameter importance).

Every one of them rests on the same rule: a terminal trial never changes (its status,
value and reports are final) and a study's trials are only ever added. So each cached
object only grows, is brought up to date by reading what can still move, and is checked
against the database's counts; a mismatch rebuilds it. Speed only, never correctness
(DESIGN.md, principle 2).

Ownership: the app makes one :class:`Caches` (``create_app``), keeps it on
``app.state.caches`` and hands it to its :class:`server.db.Database`, whose sessions
carry it (:func:`caches_of`). Nothing here is module state: two apps in one process
(tests, benchmarks) never share an entry. What each module caches is declared as a
:class:`CacheKind` beside the code that fills it.

Keys are the study's id *and* its creation time: SQLite reuses a deleted study's id,
so the id alone could hand a new study a deleted one's state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.orm import Session

from server.tables import Study

__all__ = ["CacheKind", "Caches", "StudyKey", "caches_of", "study_key"]

T = TypeVar("T")

#: What identifies one study for as long as it exists (see the module doc).
StudyKey = tuple[int, datetime | None]


def study_key(study: Study) -> StudyKey:
    return (study.id, study.created_at)


@dataclass(frozen=True)
class CacheKind(Generic[T]):
    """One kind of cached object: its name and how many studies' objects are kept (the
    least recently used dropped first). Declared once, at module level, by the module
    that fills it (immutable: the entries live in the app's :class:`Caches`)."""

    name: str
    limit: int


class _Region(Generic[T]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[StudyKey, T] = OrderedDict()


class Caches:
    """Every cached object of one app, by kind and study."""

    def __init__(self) -> None:
        self._regions: dict[str, _Region[Any]] = {}
        self._lock = threading.Lock()

    def _region(self, kind: CacheKind[T]) -> _Region[T]:
        region = self._regions.get(kind.name)
        if region is None:
            region = self._regions[kind.name] = _Region(kind.limit)
        return cast(_Region[T], region)

    def get(self, kind: CacheKind[T], study: Study, make: Callable[[], T]) -> T:
        """The study's object of this kind, made by ``make()`` when there is none yet
        (the caller brings it up to date: this only finds it)."""
        key = study_key(study)
        with self._lock:
            items = self._region(kind).items
            item = items.get(key)
            if item is None:
                item = items[key] = make()
            items.move_to_end(key)
            while len(items) > kind.limit:
                items.popitem(last=False)
        return item

    def peek(self, kind: CacheKind[T], study: Study) -> T | None:
        """The study's object of this kind if there is one (making nothing)."""
        key = study_key(study)
        with self._lock:
            items = self._region(kind).items
            item = items.get(key)
            if item is not None:
                items.move_to_end(key)
            return item

    def put(self, kind: CacheKind[T], study: Study, item: T) -> None:
        """Keep ``item`` as the study's object of this kind (replacing any)."""
        key = study_key(study)
        with self._lock:
            items = self._region(kind).items
            items[key] = item
            items.move_to_end(key)
            while len(items) > kind.limit:
                items.popitem(last=False)

    def entries(self, kind: CacheKind[T]) -> list[tuple[StudyKey, T]]:
        """A snapshot of this kind's objects with their keys, least recently used first."""
        with self._lock:
            return list(self._region(kind).items.items())

    def keep_only(self, kind: CacheKind[T], keys: set[StudyKey]) -> None:
        """Drop this kind's objects of the studies not in ``keys`` (ended, deleted)."""
        with self._lock:
            items = self._region(kind).items
            for key in [k for k in items if k not in keys]:
                del items[key]

    def clear(self, kind: CacheKind[Any] | None = None) -> None:
        """Forget one kind's objects, or every object (the next use reloads)."""
        with self._lock:
            if kind is None:
                self._regions.clear()
            else:
                self._regions.pop(kind.name, None)


def caches_of(session: Session) -> Caches:
    """The caches of the app whose database opened ``session``."""
    caches = session.info.get("caches")
    if not isinstance(caches, Caches):
        raise RuntimeError("this session was not opened by a server.db.Database")
    return caches
