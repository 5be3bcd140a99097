"""The dashboard in a real browser: the system Chromium driven by Playwright against the
embedded server (SQLite, local workers training small models on synthetic data).

Screenshots of every page land in ``test-artifacts/screenshots/`` for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from hpo.embedded import EmbeddedService
from hpo.settings import Settings
from server.tables import Study

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
TOKEN = "dashboard-test-token"

SPEC_YAML = """\
name: {name}
objective: {{metric: val_accuracy}}
space:
  lr: {{type: float, low: 0.001, high: 0.3, log: true}}
  units: {{type: int, low: 8, high: 64, log: true}}
  optimizer: {{type: categorical, choices: [adam, sgd]}}
strategy: {{name: asha, seed: 7, options: {{max_budget: 4, eta: 2}}}}
budget: {{max_trials: 5000, max_parallel: 2, epochs: 4}}
train: {{model: mlp, dataset: synthetic}}
"""
PLOTS = ("plot-history", "plot-curves", "plot-parallel", "plot-importance", "plot-slice")


def _service(tmp_path: Path, **settings: Any) -> EmbeddedService:
    return EmbeddedService(
        Settings(
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'hpo.db'}",
            scheduler_interval=0.1,
            **settings,
        ),
        workers=2,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    with _service(tmp_path_factory.mktemp("dash")) as service:
        yield service


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _study_status(service: EmbeddedService, name: str) -> str | None:
    """Read the status straight from the database, not through the page or the API."""
    engine = create_engine(service.settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(Study.status).where(Study.name == name)).scalar()
    finally:
        engine.dispose()


def _plot_points(page: Any, plot_id: str) -> int:
    """How many data points plotly drew in ``plot_id`` (0 when nothing rendered)."""
    return page.evaluate(
        """(id) => {
            const el = document.getElementById(id);
            if (!el || !el.data || !el.querySelector('.main-svg')) return 0;
            return el.data.reduce((n, t) => n + (t.x ? t.x.length
                : t.dimensions ? t.dimensions[0].values.length : 0), 0);
        }""",
        plot_id,
    )


def _column(page: Any, index: int) -> list[str]:
    cells = page.locator(f"#trials-rows tr td:nth-child({index})").all_inner_texts()
    return [c.strip() for c in cells]


def test_create_watch_sort_control_and_stop_a_study(server: EmbeddedService, page: Any) -> None:
    page.goto(server.url + "/")
    page.fill("#spec-text", SPEC_YAML.format(name="browser-study"))
    page.click("#create-button")
    page.wait_for_url(re.compile(r"/studies/browser-study$"))

    # Trials appear and finish while the page stays open (no reload).
    page.wait_for_function(
        "document.querySelectorAll('#trials-rows .badge.completed').length >= 6", timeout=90_000
    )
    for plot in PLOTS:
        page.wait_for_function(
            f"(() => {{ const el = document.getElementById('{plot}');"
            " return el && el.data && el.data.length > 0 && el.querySelector('.main-svg'); })()",
            timeout=60_000,
        )
        assert _plot_points(page, plot) > 0, plot
    # ASHA: learning curves of different budgets (rungs) are visible.
    lengths = page.evaluate("document.getElementById('plot-curves').data.map((t) => t.x.length)")
    assert len(set(lengths)) >= 2, lengths
    # ASHA: the table says each trial's budget and rung, and a promotion's parent.
    headers = [h.strip() for h in page.locator("#trials thead th").all_inner_texts()]
    assert headers[4:7] == ["Budget", "Rung", "Parent"], headers
    page.wait_for_function(
        "document.querySelectorAll('#trials-rows td.parent a').length >= 1", timeout=60_000
    )
    assert set(_column(page, 5)) <= {"1", "2", "4"}, _column(page, 5)
    assert set(_column(page, 6)) <= {"0", "1", "2"}, _column(page, 6)
    _shot(page, "study-running")

    # Sorting by value, both ways, over the completed trials.
    page.select_option("#status-filter", "completed")
    page.wait_for_function("document.getElementById('page-info').textContent.includes('of')")
    # The first click puts the best first (val_accuracy is maximized), the next turns it.
    page.click("#trials th[data-sort=value]")
    page.wait_for_selector("#trials th[data-sort=value][aria-sort=descending]")
    descending = [float(v) for v in _column(page, 4)]
    assert descending == sorted(descending, reverse=True) and len(descending) >= 2
    page.click("#trials th[data-sort=value]")
    page.wait_for_selector("#trials th[data-sort=value][aria-sort=ascending]")
    ascending = [float(v) for v in _column(page, 4)]
    assert ascending == sorted(ascending)

    # Pause, resume and the budget control; each lands in the database.
    page.click("#pause-button")
    page.wait_for_selector("#study-header .badge.paused")
    assert _study_status(server, "browser-study") == "paused"
    page.click("#resume-button")
    page.wait_for_selector("#study-header h1 .badge.running")
    assert _study_status(server, "browser-study") == "running"
    page.fill("#budget-input", "1")
    page.click("#budget-button")
    page.wait_for_selector("#control-error:not([hidden])")
    assert "max_trials" in page.inner_text("#control-error")
    # Trials keep finishing, so the live view re-renders the header: neither the error
    # not yet read nor the budget being typed may vanish with it.
    page.evaluate("document.getElementById('budget-input').dataset.seen = 'yes'")
    page.wait_for_function(
        "document.getElementById('budget-input').dataset.seen !== 'yes'", timeout=60_000
    )
    assert page.is_visible("#control-error")
    assert "max_trials" in page.inner_text("#control-error")
    assert page.input_value("#budget-input") == "1"

    # Stop with the button (confirming the dialog): the database says stopped. The budget
    # is far more than can run meanwhile, so the study is still running to be stopped.
    assert _study_status(server, "browser-study") == "running"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#stop-button")
    page.wait_for_selector("#study-header h1 .badge.stopped")
    assert _study_status(server, "browser-study") == "stopped"
    _shot(page, "study-stopped")

    page.goto(server.url + "/")
    row = page.locator("tr[data-study=browser-study]")
    assert row.locator(".badge.stopped").count() == 1
    _shot(page, "studies")


def test_bad_specs_show_the_field_inline(server: EmbeddedService, page: Any) -> None:
    page.goto(server.url + "/")
    bad = SPEC_YAML.format(name="bad-one").replace("low: 0.001, high: 0.3", "low: 0.5, high: 0.3")
    page.fill("#spec-text", bad)
    page.click("#create-button")
    page.wait_for_selector("#create-errors:not([hidden])")
    message = page.inner_text("#create-errors")
    assert "space.lr" in message, message
    _shot(page, "studies-validation-error")

    page.fill("#spec-text", "name: [unclosed")
    page.click("#create-button")
    page.wait_for_function(
        "document.getElementById('create-errors').textContent.includes('not valid YAML')"
    )
    assert page.url.rstrip("/") == server.url  # nothing created, still on the list
    with httpx.Client(base_url=server.url) as client:
        names = [s["name"] for s in client.get("/api/v1/studies").json()]
    assert "bad-one" not in names


def test_trial_and_workers_pages(server: EmbeddedService, page: Any) -> None:
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        spec = client.post(
            "/studies/parse", json={"text": SPEC_YAML.format(name="pages-study")}
        ).json()
        spec["budget"]["max_trials"] = 4
        assert client.post("/studies", json=spec).status_code == 201
    page.goto(server.url + "/workers")
    page.wait_for_selector("#workers-rows tr[data-worker]")
    assert page.locator("#workers-rows tr[data-worker]").count() == 2
    _shot(page, "workers")

    page.goto(server.url + "/studies/pages-study")
    page.wait_for_selector("#trials-rows tr[data-number='0'] .badge.completed", timeout=90_000)
    # ASHA: every trial shows its budget, rung and parent; the best is starred and its
    # budget named in the header.
    headings = page.locator("#trials thead th").all_inner_texts()
    assert [h.strip().lower() for h in headings[4:7]] == ["budget", "rung", "parent"]
    assert page.locator("#trials-rows tr[data-number='0'] td.budget").inner_text() == "1"
    page.wait_for_selector("#trials-rows .star")
    assert "of 4 epochs" in page.inner_text("#best-budget")
    page.click("#trials-rows tr[data-number='0'] a")
    page.wait_for_url(re.compile(r"/studies/pages-study/trials/0$"))
    page.wait_for_function(
        "(() => { const el = document.getElementById('plot-curve');"
        " return el && el.data && el.data.length > 0; })()"
    )
    assert _plot_points(page, "plot-curve") >= 1
    text = page.inner_text("#trial").lower()  # labels are upper-cased by CSS
    assert "checkpoint" in text and "attempts" in text and "lr" in text
    assert page.locator("#attempts tbody tr").count() >= 1
    _shot(page, "trial")


def test_with_a_token_pages_ask_for_it_first(tmp_path: Path, chromium: Any, page: Any) -> None:
    with _service(tmp_path, api_token=TOKEN) as service:
        page.goto(service.url + "/studies/anything")
        page.wait_for_url(re.compile(r"/login\?next=/studies/anything$"))
        _shot(page, "login")
        page.fill("#token", "wrong")
        page.click("#login-button")
        page.wait_for_selector("text=unknown token")
        # Anonymous writes are refused by the API itself.
        with httpx.Client(base_url=service.url + "/api/v1") as client:
            spec = client.post("/studies/parse", json={"text": SPEC_YAML.format(name="x")})
            assert spec.status_code == 401
        page.goto(service.url + "/login")
        page.fill("#token", TOKEN)
        page.click("#login-button")
        page.wait_for_selector("#create-form")
        page.fill("#spec-text", SPEC_YAML.format(name="signed-in"))
        page.click("#create-button")
        page.wait_for_url(re.compile(r"/studies/signed-in$"))
        assert _study_status(service, "signed-in") == "running"


def test_a_study_whose_trials_all_fail_reads_failed_with_the_reasons(
    server: EmbeddedService, page: Any
) -> None:
    """Fail-fast ends a study whose trials keep failing: its page and the studies list
    show a red 'failed' badge and bar, never a green 'completed', and say why."""
    spec = {
        "name": "broken-study",
        "objective": {"metric": "score", "direction": "maximize"},
        "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},
        "budget": {"max_trials": 40, "max_parallel": 2, "epochs": 1, "max_consecutive_failures": 3},
        "train": {"entrypoint": "not_installed_anywhere.train:fit"},
    }
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        assert client.post("/studies", json=spec).status_code == 201
    page.goto(server.url + "/studies/broken-study")
    page.wait_for_selector("section.header[data-status='failed']", timeout=60_000)
    header = page.locator("section.header")
    assert header.locator(".badge.failed").count() >= 1
    assert header.locator(".badge.completed").count() == 0
    reason = page.inner_text("#study-reason")
    assert "fail-fast" in reason and "not_installed_anywhere.train:fit" in reason
    assert header.locator(".bar span.failed").count() == 1
    assert header.locator(".bar span.completed").count() == 0
    assert page.locator("#stop-button").count() == 0  # nothing left to stop
    assert page.locator("#budget-form").count() == 0  # failed is final
    # The failure banner: how many failed, the reasons grouped, the fail-fast rule.
    banner = page.inner_text("#failure-banner")
    failed = page.locator("#trials-rows .badge.failed").count()
    assert failed >= 3 and f"{failed} trials failed" in banner
    assert f"{failed} \u00d7 cannot import entrypoint 'not_installed_anywhere.train:fit'" in banner
    assert "after 3 failures in a row" in page.inner_text("#fail-fast")
    errors = page.locator("#trials-rows tr:has(.badge.failed) td.error-cell").all_inner_texts()
    assert len(errors) == failed and all("not_installed_anywhere" in e for e in errors)
    _shot(page, "study-failed")
    page.goto(server.url + "/")
    row = page.locator("tr[data-study='broken-study']")
    row.locator(".badge.failed").wait_for()
    assert "fail-fast" in (row.locator("td").nth(2).get_attribute("title") or "")
    assert _study_status(server, "broken-study") == "failed"


def test_parallel_coordinates_draw_every_trial_of_a_conditional_space(
    server: EmbeddedService, page: Any
) -> None:
    """An inactive conditional parameter has a level of its own ("inactive"), so every
    completed trial is a whole line: no dimension holds a NaN (Plotly drops those)."""
    spec = {
        "name": "conditional-study",
        "objective": {"metric": "val_accuracy"},
        "space": {
            "lr": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            "momentum": {"type": "float", "low": 0.1, "high": 0.9, "when": {"optimizer": "sgd"}},
        },
        "strategy": {"name": "grid", "seed": 1, "options": {"points": 2}},
        "budget": {"max_trials": 6, "max_parallel": 2, "epochs": 1},
        "train": {"model": "mlp", "dataset": "synthetic"},
    }
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        assert client.post("/studies", json=spec).status_code == 201
    page.goto(server.url + "/studies/conditional-study")
    page.wait_for_selector("section.header[data-status='completed']", timeout=90_000)
    page.wait_for_function(
        "(() => { const el = document.getElementById('plot-parallel');"
        " return el && el.data && el.data[0] && el.data[0].dimensions"
        " && el.data[0].dimensions[0].values.length === 6; })()"
    )
    dims = page.evaluate(
        """() => document.getElementById('plot-parallel').data[0].dimensions.map((d) => ({
            label: d.label, finite: Array.from(d.values).every(Number.isFinite),
            ticks: d.ticktext || [] }))"""
    )
    assert all(d["finite"] for d in dims), dims
    momentum = next(d for d in dims if d["label"] == "momentum")
    assert momentum["ticks"][0] == "inactive"  # the adam trials sit on their own level
    _shot(page, "parallel-conditional")
