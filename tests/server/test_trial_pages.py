"""Pages of a study's trials: cursor (keyset) pages walk the same rows as offset pages
for every sort key and order, bad cursors are a 422 naming the field, and the count
mirror behind ``X-Total-Count`` and the study's counts equals a count in SQL."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any, get_args

import httpx
import pytest
from sqlalchemy import create_engine, delete, func, insert, select, update

from hpo.embedded import EmbeddedService
from hpo.schemas import TrialSortKey
from hpo.spec import StudySpec
from server import counts, studies
from server.counts import trial_counts
from server.db import Database
from server.migrate import upgrade
from server.tables import Study, Trial

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
STATUSES = ["completed", "pruned", "failed", "running", "queued", "stopped"]


def _rows(study_id: int, n: int, first: int = 0) -> list[dict[str, Any]]:
    """Trials with ties and nulls in every sort key."""
    rows = []
    for i in range(first, first + n):
        status = STATUSES[i % len(STATUSES)]
        started = T0 + timedelta(minutes=i % 5) if status != "queued" else None
        finished = (
            started + timedelta(seconds=(i * 7) % 4)
            if status not in ("queued", "running") and started
            else None
        )
        rows.append(
            {
                "study_id": study_id,
                "number": i,
                "status": status,
                "params": {},
                "info": {},
                "value": [0.5, 0.25, None, 0.75, 0.25][(i // 5) % 5]
                if status in ("completed", "pruned")
                else None,
                "attempt": i % 3,
                "worker": [None, "w1", "w2"][i % 3],
                "created_at": T0,
                "started_at": started,
                "finished_at": finished,
            }
        )
    return rows


@pytest.fixture
def paged(api: httpx.Client, live_server: EmbeddedService, make_spec) -> str:
    """A stopped study whose trials were replaced by ``_rows(…, 23)``."""
    assert api.post("/studies", json=make_spec("paged")).status_code == 201
    assert api.post("/studies/paged/stop").status_code == 200
    engine = create_engine(live_server.settings.resolved_database_url)
    with engine.begin() as conn:
        study_id = conn.scalar(select(Study.id).where(Study.name == "paged"))
        conn.execute(delete(Trial).where(Trial.study_id == study_id))
        conn.execute(insert(Trial), _rows(study_id, 23))
    engine.dispose()
    return "/studies/paged/trials"


def _walk(api: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[int], set[str]]:
    """Follow X-Next-Cursor from the first page; the numbers seen and the totals."""
    numbers: list[int] = []
    totals: set[str] = set()
    cursor = None
    for _ in range(100):
        page = api.get(
            path, params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        numbers += [t["number"] for t in page.json()]
        totals.add(page.headers["x-total-count"])
        cursor = page.headers.get("x-next-cursor")
        if cursor is None:
            return numbers, totals
    raise AssertionError("the cursor never ended")


@pytest.mark.parametrize("sort", get_args(TrialSortKey))
def test_cursor_pages_walk_the_offset_order(api: httpx.Client, paged: str, sort: str) -> None:
    for order in ("asc", "desc"):
        for status in (None, "completed"):
            params: dict[str, Any] = {"sort": sort, "order": order}
            if status:
                params["status"] = status
            everything = api.get(paged, params={**params, "limit": 1000})
            expected = [t["number"] for t in everything.json()]
            walked, totals = _walk(api, paged, params)
            assert walked == expected, (sort, order, status)
            assert totals == {str(len(expected))}
            assert "x-next-cursor" not in everything.headers


def _forge(body: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


GOOD = {"v": 1, "s": "value", "o": "asc", "f": None, "k": 0.5, "n": 3}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": _forge({**GOOD, "v": 2})}, "cursor"),
        ({"cursor": _forge({**GOOD, "k": "high"})}, "cursor"),
        ({"cursor": _forge({**GOOD, "n": -1})}, "cursor"),
        ({"cursor": _forge({**GOOD, "n": 2**70})}, "cursor"),
        (
            {"cursor": _forge({**GOOD, "s": "duration", "k": {"d": "x"}}), "sort": "duration"},
            "cursor",
        ),
        (
            {"cursor": _forge({**GOOD, "s": "started_at", "k": {"t": "x"}}), "sort": "started_at"},
            "cursor",
        ),
        ({"cursor": _forge({**GOOD, "s": "status", "k": None}), "sort": "status"}, "cursor"),
        ({"cursor": _forge(GOOD), "sort": "number"}, "cursor"),  # made for sort=value
        ({"cursor": _forge(GOOD), "sort": "value", "order": "desc"}, "cursor"),
        ({"cursor": _forge(GOOD), "sort": "value", "status": "failed"}, "cursor"),
        ({"cursor": _forge(GOOD), "sort": "value", "offset": 3}, "offset"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"[" * 1400).decode()}, "cursor"),
        ({"cursor": "é" * 10}, "cursor"),
        ({"cursor": _forge({**GOOD, "k": 10**400})}, "cursor"),
        ({"cursor": "x" * 2001}, "cursor"),
    ],
)
def test_bad_cursors_are_422_naming_the_field(
    api: httpx.Client, paged: str, params: dict[str, Any], field: str
) -> None:
    response = api.get(paged, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field


def test_a_forged_but_well_formed_cursor_is_served(api: httpx.Client, paged: str) -> None:
    page = api.get(paged, params={"sort": "value", "cursor": _forge(GOOD), "limit": 100})
    assert page.status_code == 200
    assert all(t["value"] is None or t["value"] >= 0.5 for t in page.json())


# ------------------------------------------------------------------ the count mirror


def _sql(db: Database, study_id: int) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(
            select(Trial.status, func.count())
            .where(Trial.study_id == study_id)
            .group_by(Trial.status)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def _mirrored(db: Database, study_id: int) -> tuple[dict[str, int], int | None]:
    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        return trial_counts(session, study, min_trials=0)


def test_count_mirror_equals_sql_through_every_change(db: Database, make_spec) -> None:
    with db.session() as session:
        study_id = create = studies.create_study(
            session, StudySpec.model_validate(make_spec("c"))
        ).id
    assert create
    with db.session() as session:
        session.execute(insert(Trial), _rows(study_id, 30))
    assert _mirrored(db, study_id) == (_sql(db, study_id), 29)
    changes = [
        # A queued trial starts, a running one finishes, one is handed back.
        update(Trial).where(Trial.study_id == study_id, Trial.number == 4).values(status="running"),
        update(Trial)
        .where(Trial.study_id == study_id, Trial.number == 3)
        .values(status="completed"),
        update(Trial).where(Trial.study_id == study_id, Trial.number == 9).values(status="queued"),
        insert(Trial).values(_rows(study_id, 5, first=30)),  # new trials, numbered on
    ]
    for change in changes:
        with db.session() as session:
            session.execute(change)
        assert _mirrored(db, study_id)[0] == _sql(db, study_id)
    assert _mirrored(db, study_id)[1] == 34
    # Behind the server's back: an open trial vanishes (rebuilt), then a gap.
    with db.session() as session:
        session.execute(delete(Trial).where(Trial.study_id == study_id, Trial.number == 33))
    assert _mirrored(db, study_id) == (_sql(db, study_id), None)
    with db.session() as session:
        session.execute(insert(Trial).values(_rows(study_id, 1, first=40)))
    assert _mirrored(db, study_id) == (_sql(db, study_id), None)


@pytest.mark.parametrize("sort", ["number", "value"])
def test_offset_pages_from_the_mirror(
    db: Database, make_spec, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    """With the mirror on, an offset page by number starts at its number, one by value
    after the mirror's value at the offset: the same rows as the offset in SQL."""
    monkeypatch.setattr(counts, "MIN_TRIALS", 0)
    with db.session() as session:
        study_id = studies.create_study(session, StudySpec.model_validate(make_spec("d"))).id
        session.execute(insert(Trial), _rows(study_id, 40))
    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        for descending in (False, True):
            every = studies.list_trials(
                session, study, limit=1000, sort=sort, descending=descending
            )
            expected = [t.number for t in every.trials]
            for offset in (0, 1, 2, 3, 6, 7, 8, 17, 36, 37, 39, 40, 41):
                page = studies.list_trials(
                    session, study, limit=5, offset=offset, sort=sort, descending=descending
                )
                assert [t.number for t in page.trials] == expected[offset : offset + 5]
                assert page.total == 40
                assert (page.next_cursor is None) == (offset + 5 >= 40)


def test_count_mirror_backstop_catches_a_change_it_cannot_see(
    db: Database, make_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished trial's status edited behind the server's back (invariant 1 broken)
    is caught by the periodic comparison with a full count."""
    with db.session() as session:
        study_id = studies.create_study(session, StudySpec.model_validate(make_spec("v"))).id
        session.execute(insert(Trial), _rows(study_id, 12))
    assert _mirrored(db, study_id)[0] == _sql(db, study_id)
    with db.session() as session:
        session.execute(
            update(Trial)
            .where(Trial.study_id == study_id, Trial.number == 0)
            .values(status="failed")
        )
    monkeypatch.setattr(counts, "VERIFY_SECONDS", 0.0)
    assert _mirrored(db, study_id)[0] == _sql(db, study_id)


def _refresh_steps(db: Database, study_id: int) -> int:
    """SQLite virtual-machine steps (in units of 10) one mirror refresh took."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        raw = session.connection().connection.driver_connection
        raw.set_progress_handler(count, 10)
        try:
            trial_counts(session, study, min_trials=0)
        finally:
            raw.set_progress_handler(None, 0)
    return steps


def test_a_mirror_refresh_reads_only_new_and_open_trials(tmp_path, make_spec) -> None:
    """A refresh costs the same whatever the study's size: it reads the new trials and
    the open ones by index, not every trial of the study (SQLite, whose planner read
    the study's whole index for ``id > ? OR id IN (...)``)."""
    upgrade(url := f"sqlite:///{tmp_path / 'hpo.db'}")
    db = Database(url)
    steps = {}
    try:
        for size in (100, 4000):
            with db.session() as session:
                study_id = studies.create_study(
                    session, StudySpec.model_validate(make_spec(f"s{size}"))
                ).id
                session.execute(insert(Trial), _rows(study_id, size))
                session.execute(  # a few open trials, as in a running study
                    update(Trial)
                    .where(Trial.study_id == study_id, Trial.number < size - 12)
                    .where(Trial.status.in_(["running", "queued"]))
                    .values(status="completed")
                )
            _refresh_steps(db, study_id)  # built from the whole study
            with db.session() as session:  # one new trial, some open ones change
                session.execute(insert(Trial).values(_rows(study_id, 1, first=size)))
                session.execute(
                    update(Trial)
                    .where(Trial.study_id == study_id, Trial.status == "running")
                    .values(status="completed")
                )
            steps[size] = _refresh_steps(db, study_id)
            assert _mirrored(db, study_id)[0] == _sql(db, study_id)
    finally:
        db.dispose()
    # Reading every index entry of the study made it ~40x the 100-trial study's.
    assert steps[4000] < 2 * steps[100], steps
