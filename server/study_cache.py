"""A bounded, thread-safe map from a study to an in-memory object derived from it (a
mirror of its counts, its finished learning curves, ...): speed only, never the source
of truth (DESIGN.md, principle 2).

Keys are the database URL, the study id and its creation time: several databases can
live in one process (tests, benchmarks) and SQLite reuses a deleted study's id, so the
id alone could hand one study another's state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from server.tables import Study

__all__ = ["PerStudy"]

T = TypeVar("T")


class PerStudy(Generic[T]):
    """At most ``limit`` objects, one per study, the least recently used dropped first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[str, int, datetime | None], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, study: Study, make: Callable[[], T]) -> T:
        """The study's object, made by ``make()`` when there is none yet."""
        key = (str(session.get_bind().engine.url), study.id, study.created_at)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = make()
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return item

    def clear(self) -> None:
        """Forget every study's object."""
        with self._lock:
            self._items.clear()
