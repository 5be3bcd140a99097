"""The one table of study transitions a user asks for (server.studies.TRANSITIONS),
applied without HTTP: every action from every study status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from hpo.spec import StudySpec
from search.status import STUDY_STATUSES
from server.db import Database
from server.errors import Conflict
from server.migrate import upgrade
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import TRANSITIONS, change_status, create_study
from server.tables import Study, Trial

# (action, status before) -> status after, or None for a Conflict. Written out, not
# derived from the table: this is the behaviour the table must have.
EXPECTED = {
    ("pause", "running"): "paused",
    ("pause", "paused"): "paused",
    ("pause", "completed"): None,
    ("pause", "failed"): None,
    ("pause", "stopped"): None,
    ("resume", "running"): "running",
    ("resume", "paused"): "running",
    ("resume", "completed"): None,
    ("resume", "failed"): None,
    ("resume", "stopped"): None,
    ("stop", "running"): "stopped",
    ("stop", "paused"): "stopped",
    ("stop", "completed"): None,
    ("stop", "failed"): None,
    ("stop", "stopped"): "stopped",
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('transitions') / 'hpo.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def test_the_table_covers_every_action_and_status() -> None:
    assert {(a, s) for a in TRANSITIONS for s in STUDY_STATUSES} == set(EXPECTED)


@pytest.mark.parametrize(("action", "before"), sorted(EXPECTED))
def test_an_action_from_each_status(db: Database, make_spec, action: str, before: str) -> None:
    name = f"{action}-{before}"
    with db.session() as session:
        spec = make_spec(name, budget={"max_trials": 4, "max_parallel": 2, "epochs": 1})
        study_id = create_study(session, StudySpec.model_validate(spec)).id
    Scheduler(db, NullQueue()).run_once()  # two queued trials
    with db.session() as session:
        session.execute(update(Study).where(Study.id == study_id).values(status=before))
    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        after = EXPECTED[(action, before)]
        if after is None:
            with pytest.raises(Conflict, match=f"is {before}: only a"):
                change_status(session, study, action)
        else:
            assert change_status(session, study, action).status == after
    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None and study.status == (after or before)
        queued = session.scalars(select(Trial.status).where(Trial.study_id == study_id)).all()
    # Stopping stops the queued trials now; nothing else touches them.
    stopped_now = action == "stop" and before != "stopped" and after == "stopped"
    assert set(queued) == ({"stopped"} if stopped_now else {"queued"})
