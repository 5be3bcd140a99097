"""The SDK (``hpo.Client``) over real HTTP against a real server with no workers: the
tests drive trials themselves (start, report, finish) as a worker would.

One server per module (SQLite; the server's API tests cover PostgreSQL); each test uses
its own study names.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from helpers.services import embedded_settings

import hpo.client
from hpo.client import (
    APIError,
    Client,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerUnavailable,
    Unauthorized,
)
from hpo.embedded import EmbeddedService
from hpo.export import BASE_COLUMNS, MissingDependency
from hpo.schemas import FinishIn, ReportIn, StudyPublic, TrialSpec
from hpo.spec import StudySpec

ADMIN = "sdk-admin-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    with EmbeddedService(embedded_settings(tmp_path_factory.mktemp("sdk")), workers=0) as service:
        yield service


@pytest.fixture
def client(server: EmbeddedService) -> Iterator[Client]:
    with Client(server.url) as sdk:
        yield sdk


def run_trial(sdk: Client, trial_id: int, value: float, steps: int = 2) -> None:
    """Run one queued trial to completion as a worker would, reporting a curve."""
    spec = sdk.start_trial(trial_id, worker="test:1")
    for step in range(steps):
        report = ReportIn(
            attempt=spec.attempt,
            step=step,
            value=value * (step + 1) / steps,
            metrics={"loss": 1.0 / (step + 1)},
        )
        sdk.report(trial_id, report)
    sdk.finish_trial(trial_id, FinishIn(attempt=spec.attempt, status="completed", value=value))


def complete_study(
    sdk: Client, name: str, value: Callable[[int], float], wait: Callable[..., object]
) -> StudyPublic:
    """Run every trial the scheduler creates until the study is completed."""

    def step() -> StudyPublic | None:
        for t in sdk.list_trials(name, status="queued"):
            run_trial(sdk, t.id, value(t.number))
        study = sdk.get_study(name)
        return study if study.status == "completed" else None

    return wait(step, timeout=30)  # type: ignore[return-value]


def test_create_list_get_stop(client: Client, make_spec) -> None:
    created = client.create_study(make_spec("sdk-basic"))
    assert isinstance(created, StudyPublic)
    assert created.status == "running" and created.max_trials == 4
    assert "sdk-basic" in {s.name for s in client.list_studies()}
    assert client.get_study("sdk-basic").id == created.id
    # A StudySpec is accepted as well as a dict.
    typed = client.create_study(StudySpec.model_validate(make_spec("sdk-typed")))
    assert typed.name == "sdk-typed"
    stopped = client.stop_study("sdk-basic")
    assert stopped.status == "stopped"
    assert client.best_trial("sdk-basic") is None


def test_errors_carry_status_message_and_field(client: Client, make_spec) -> None:
    bad = make_spec("sdk-bad", space={"lr": {"type": "float", "low": 0.1, "high": 0.01}})
    with pytest.raises(InvalidRequest) as err:
        client.create_study(bad)
    assert err.value.status_code == err.value.status == 422
    assert err.value.field == "space.lr.low"
    assert "low must be less than high" in err.value.message

    with pytest.raises(NotFound) as missing:
        client.get_study("no-such-study")
    assert missing.value.status_code == 404
    assert "no-such-study" in missing.value.message

    client.create_study(make_spec("sdk-dup"))
    with pytest.raises(Conflict) as dup:
        client.create_study(make_spec("sdk-dup"))
    assert dup.value.status_code == 409
    assert isinstance(dup.value, APIError)
    assert "Conflict(status_code=409" in repr(dup.value)


def test_unreachable_server_is_one_clear_error() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as sdk, pytest.raises(ServerUnavailable) as err:
        sdk.list_studies()
    assert err.value.status_code == 0
    assert "cannot reach the HPO server at http://127.0.0.1:9" in err.value.message


def test_pause_resume_and_update(client: Client, make_spec, wait) -> None:
    client.create_study(make_spec("sdk-ctl"))
    assert client.pause_study("sdk-ctl").status == "paused"
    assert client.resume_study("sdk-ctl").status == "running"
    updated = client.update_study("sdk-ctl", max_trials=9, max_parallel=3)
    assert (updated.max_trials, updated.max_parallel) == (9, 3)
    assert client.update_study("sdk-ctl", max_parallel=1).max_trials == 9  # None: unchanged
    wait(lambda: client.get_study("sdk-ctl").n_trials >= 2)
    with pytest.raises(InvalidRequest) as err:
        client.update_study("sdk-ctl", max_trials=1)
    assert err.value.field == "max_trials"
    client.stop_study("sdk-ctl")
    with pytest.raises(Conflict):
        client.resume_study("sdk-ctl")


def test_trials_pages_sorting_records_and_best(
    client: Client, make_spec, wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_study(make_spec("sdk-run", budget={"max_trials": 5, "max_parallel": 2}))
    study = complete_study(client, "sdk-run", lambda n: 0.1 * (n + 1), wait)
    assert study.counts == {"completed": 5}

    page = client.trials_page("sdk-run", limit=2, offset=1)
    assert page.total == 5
    assert [t.number for t in page.trials] == [1, 2]
    # Keyset paging: each page's cursor leads to the next; the last has none.
    after = client.trials_page("sdk-run", limit=2, cursor=page.next_cursor)
    assert [t.number for t in after.trials] == [3, 4] and after.total == 5
    assert after.next_cursor is None
    with pytest.raises(InvalidRequest) as bad:
        client.trials_page("sdk-run", sort="value", cursor=page.next_cursor)
    assert bad.value.field == "cursor"
    monkeypatch.setattr(hpo.client, "PAGE_SIZE", 2)  # all_trials follows three cursors
    assert [t.number for t in client.all_trials("sdk-run", sort="value")] == [0, 1, 2, 3, 4]
    monkeypatch.undo()
    by_value = client.list_trials("sdk-run", sort="value", order="desc")
    assert [t.number for t in by_value] == [4, 3, 2, 1, 0]
    assert [t.number for t in client.all_trials("sdk-run", limit=3)] == [0, 1, 2]
    assert client.all_trials("sdk-run", status="queued") == []

    best = client.best_trial("sdk-run")
    assert best is not None and best.number == 4 and best.value == pytest.approx(0.5)
    detail = client.get_trial("sdk-run", 4)
    assert [(r.step, r.value) for r in detail.reports] == [(0, 0.25), (1, 0.5)]

    records = client.trials_records("sdk-run")
    assert [r["number"] for r in records] == [0, 1, 2, 3, 4]
    first = records[0]
    params = ["param_lr", "param_batch_size", "param_units"]  # the space's order
    assert list(first) == [*BASE_COLUMNS, *params, "metric_loss"]  # every reported metric
    assert first["status"] == "completed" and first["value"] == pytest.approx(0.1)
    assert first["attempt"] == 1 and first["worker"] == "test:1"
    assert isinstance(first["started_at"], datetime)
    assert first["duration_s"] == pytest.approx(
        (first["finished_at"] - first["started_at"]).total_seconds()
    )
    assert first["duration_s"] >= 0
    assert first["last_step"] == 1
    trial0 = client.get_trial("sdk-run", 0)
    assert first["param_lr"] == trial0.params["lr"]
    assert client.trials_records("sdk-run", status="failed") == []


def test_trials_dataframe(client: Client, make_spec, wait, monkeypatch) -> None:
    client.create_study(make_spec("sdk-df", budget={"max_trials": 2, "max_parallel": 2}))
    complete_study(client, "sdk-df", lambda n: 0.5 + n / 10, wait)
    # Without pandas: a clear ImportError saying what to install, not a traceback deep
    # inside the SDK.
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pandas", None)
        with pytest.raises(MissingDependency, match="pip install pandas"):
            client.trials_dataframe("sdk-df")
    pd = pytest.importorskip("pandas")
    frame = client.trials_dataframe("sdk-df")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["number"]) == [0, 1]
    assert list(frame["value"]) == pytest.approx([0.5, 0.6])
    assert {"param_lr", "param_units", "duration_s"} <= set(frame.columns)


# -- routes the lead is adding in the same change: DELETE study, suggest --------------------


def test_delete_study_removes_it_with_its_trials(client: Client, make_spec, wait) -> None:
    client.create_study(make_spec("sdk-del"))
    wait(lambda: client.get_study("sdk-del").n_trials >= 1)
    assert client.delete_study("sdk-del") is None
    with pytest.raises(NotFound):
        client.get_study("sdk-del")
    with pytest.raises(NotFound):
        client.list_trials("sdk-del")
    with pytest.raises(NotFound):
        client.delete_study("sdk-del")
    # The name is free again.
    assert client.create_study(make_spec("sdk-del")).n_trials == 0


def test_suggest_leases_trials_for_ask_and_tell(client: Client, make_spec) -> None:
    client.create_study(
        make_spec("sdk-ask", budget={"max_trials": 6, "max_parallel": 3}, runner="external")
    )
    specs = client.suggest("sdk-ask", count=2)
    assert len(specs) == 2 and all(isinstance(s, TrialSpec) for s in specs)
    assert len({s.trial_id for s in specs}) == 2
    for s in specs:
        assert s.attempt >= 1
        assert 1e-3 <= s.params["lr"] <= 1e-1
        client.report(s.trial_id, ReportIn(attempt=s.attempt, step=0, value=0.3))
        client.heartbeat(s.trial_id, s.attempt)
        client.finish_trial(s.trial_id, FinishIn(attempt=s.attempt, status="completed", value=0.4))
    done = {t.id: t for t in client.all_trials("sdk-ask", status="completed")}
    assert {s.trial_id for s in specs} <= set(done)
    with pytest.raises(InvalidRequest):
        client.suggest("sdk-ask", count=0)
    with pytest.raises(NotFound):
        client.suggest("no-such-study")


# -- tokens ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    """A second server with auth on (an admin token in its settings)."""
    settings = embedded_settings(tmp_path_factory.mktemp("sdk-auth"), api_token=ADMIN)
    with EmbeddedService(settings, workers=0) as service:
        yield service


def test_token_lifecycle_and_auth_errors(secured: EmbeddedService) -> None:
    with Client(secured.url, token=ADMIN) as admin:
        created = admin.create_token("sdk-user", "user")
        assert created["name"] == "sdk-user" and created["scope"] == "user"
        assert created["token"] and created["created_at"]
        listed = {t["name"]: t for t in admin.list_tokens()}
        assert listed["sdk-user"]["scope"] == "user"
        assert "token" not in listed["sdk-user"]  # the secret is shown once only
        with pytest.raises(Conflict) as dup:
            admin.create_token("sdk-user", "worker")
        assert dup.value.field == "name"

        with Client(secured.url, token=created["token"]) as user:
            assert user.list_studies() == []  # the new token works at once
            with pytest.raises(Forbidden) as forbidden:
                user.create_token("escalate", "admin")  # user scope cannot manage tokens
            assert forbidden.value.status_code == 403

            admin.delete_token("sdk-user")
            with pytest.raises(Unauthorized) as revoked:
                user.list_studies()
            assert revoked.value.status_code == 401
        with pytest.raises(NotFound):
            admin.delete_token("sdk-user")
    with Client(secured.url) as anonymous, pytest.raises(Unauthorized) as err:
        anonymous.list_studies()
    assert "token" in err.value.message
