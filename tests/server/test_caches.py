"""The server's one cache mechanism (server.caches): owned by an app, keyed so that a
study id SQLite reuses after a delete never reaches a deleted study's entries, bounded,
and nowhere else: no server module keeps mutable state of its own."""

from __future__ import annotations

import importlib
import pkgutil
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest

import server
from hpo.settings import Settings
from hpo.spec import StudySpec
from server.app import create_app
from server.caches import CacheKind, Caches, caches_of
from server.db import Database
from server.history import HISTORY
from server.importance import param_importance
from server.migrate import upgrade
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import create_study, delete_study
from server.tables import Study, Trial

SPACE = {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}, "units": [16, 32, 64]}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    # SQLite on purpose: it is the database that hands a deleted study's id to the next.
    url = f"sqlite:///{tmp_path / 'caches.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _study_with_trials(db: Database, make_spec, name: str, values: list[float]) -> int:
    with db.session() as session:
        spec = make_spec(name, space=SPACE, budget={"max_trials": 100, "max_parallel": 1})
        study = create_study(session, StudySpec.model_validate(spec))
        for n, value in enumerate(values):
            # lr follows n % 3 and units (n // 3) % 3: independent over 9 trials
            params = {"lr": 10 ** -(1 + n % 3), "units": 16 * 2 ** ((n // 3) % 3)}
            session.add(
                Trial(study_id=study.id, number=n, status="completed", params=params, value=value)
            )
        return study.id


def _delete(db: Database, study_id: int) -> None:
    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        delete_study(session, study)


def test_a_new_study_with_a_reused_id_is_never_served_a_deleted_studys_importance(
    db: Database, make_spec
) -> None:
    # The first study: its objective follows lr alone.
    old = _study_with_trials(db, make_spec, "old", [float(n % 3) for n in range(18)])
    with db.session() as session:
        first = param_importance(session, session.get(Study, old))
    assert first.importances[0].param == "lr"
    _delete(db, old)
    # Same id, same number of completed trials; its objective follows units alone,
    # so an answer from the old entry would be visibly wrong, not just stale.
    new = _study_with_trials(db, make_spec, "new", [float((n // 3) % 3) for n in range(18)])
    assert new == old, "SQLite reuses the id: the case this test is about"
    with db.session() as session:
        second = param_importance(session, session.get(Study, new))
    assert second.n_trials == first.n_trials
    assert second.importances[0].param == "units"  # its own trials, not the old entry
    with db.session() as session:
        again = param_importance(session, session.get(Study, new))
    assert again is second


def test_a_new_study_with_a_reused_id_gets_a_fresh_history_mirror(db: Database, make_spec) -> None:
    old = _study_with_trials(db, make_spec, "old", [1.0, 2.0, 3.0])
    with db.session() as session:
        mirror = Scheduler._history(session, session.get(Study, old))
    assert mirror.created == 3
    _delete(db, old)
    new = _study_with_trials(db, make_spec, "new", [])
    assert new == old
    with db.session() as session:
        fresh = Scheduler._history(session, session.get(Study, new))
    assert fresh is not mirror and fresh.created == 0
    # A pass drops the deleted study's mirror: only the live study's is kept.
    Scheduler(db, NullQueue()).run_once()
    with db.session() as session:
        study = session.get(Study, new)
        assert [key for key, _ in caches_of(session).entries(HISTORY)] == [
            (study.id, study.created_at)
        ]


def test_entries_are_bounded_least_recently_used_first(db: Database, make_spec) -> None:
    kind: CacheKind[list[int]] = CacheKind("test-bounded", limit=2)
    caches = Caches()
    ids = [_study_with_trials(db, make_spec, f"s{i}", []) for i in range(3)]
    with db.session() as session:
        a, b, c = (session.get(Study, i) for i in ids)
        made = [caches.get(kind, s, list) for s in (a, b)]
        assert caches.get(kind, a, list) is made[0]  # a is now the most recent
        caches.get(kind, c, list)  # evicts b, the least recently used
        assert caches.peek(kind, b) is None
        assert caches.peek(kind, a) is made[0]
        caches.clear(kind)
        assert caches.peek(kind, a) is None


def test_each_app_owns_its_caches(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'a.db'}")
    one = create_app(settings, migrate=True, run_scheduler=False)
    two = create_app(settings, run_scheduler=False)
    assert isinstance(one.state.caches, Caches)
    assert one.state.caches is not two.state.caches
    with one.state.db.session() as session:
        assert caches_of(session) is one.state.caches
    one.state.db.dispose()
    two.state.db.dispose()


_MUTABLE = (dict, list, set, bytearray, OrderedDict, weakref.WeakKeyDictionary, Caches)


def test_no_server_module_keeps_mutable_state_of_its_own() -> None:
    """Module-level state would outlive an app and be shared by every app of the
    process: what a server module caches belongs in the app's ``Caches``."""
    found = []
    for info in pkgutil.walk_packages(server.__path__, "server."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            if isinstance(value, _MUTABLE):
                found.append(f"{info.name}.{name}")
    assert found == []
