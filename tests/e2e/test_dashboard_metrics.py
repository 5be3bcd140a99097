"""Every metric, and trials side by side, in a real browser (the system Chromium): the
study page's and the trial page's metric pickers plot any reported metric, and 2-5
trials picked in the table open side by side, differences marked, curves overlaid."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpo.embedded import EmbeddedService
from hpo.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def studied(tmp_path: Path) -> Iterator[EmbeddedService]:
    """A study of three ask/tell trials, each reporting score (the objective), loss and
    lr_now for three steps."""
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'hpo.db'}", scheduler_interval=0.1
    )
    with EmbeddedService(settings, workers=0) as service:
        with httpx.Client(base_url=service.url + "/api/v1") as api:
            spec = {
                "name": "metrics",
                "objective": {"metric": "score", "direction": "maximize"},
                "space": {
                    "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
                    "depth": {"type": "int", "low": 1, "high": 8},
                },
                "strategy": {"name": "random", "seed": 3},
                "budget": {"max_trials": 3, "max_parallel": 3, "epochs": 3},
                "runner": "external",
            }
            assert api.post("/studies", json=spec).status_code == 201
            for lease in api.post("/studies/metrics/suggest", params={"count": 3}).json():
                n, tid = lease["number"], lease["trial_id"]
                for step in (1, 2, 3):
                    report = {
                        "attempt": 1,
                        "step": step,
                        "value": 0.1 * step + n,
                        "metrics": {"loss": _loss(n, step), "lr_now": 0.01 / step},
                    }
                    assert api.post(f"/trials/{tid}/reports", json=report).status_code == 200
                done = {"attempt": 1, "status": "completed", "value": 0.3 + n}
                assert api.post(f"/trials/{tid}/finish", json=done).status_code == 200
        yield service


def _loss(number: int, step: int) -> float:
    return round(10.0 - step - number, 3)


def _trace_ys(page: Any, plot: str) -> list[list[float]]:
    return page.evaluate(
        "(id) => document.getElementById(id).data.map((t) => Array.from(t.y))", plot
    )


def test_the_metric_pickers_plot_any_reported_metric(studied: EmbeddedService, page: Any) -> None:
    page.goto(studied.url + "/studies/metrics")
    page.wait_for_function("document.getElementById('metric-picker').options.length === 3")
    options = page.locator("#metric-picker option").all_inner_texts()
    assert options == ["score", "loss", "lr_now"]
    page.select_option("#metric-picker", "loss")
    page.wait_for_function(
        "document.getElementById('plot-history').layout.yaxis.title.text === 'loss'"
    )
    history = _trace_ys(page, "plot-history")
    # Each trial's last loss (step 3); no "best so far" line for a metric without a direction.
    assert sorted(y for ys in history for y in ys) == sorted(_loss(n, 3) for n in range(3))
    page.wait_for_function(
        "document.getElementById('plot-curves').layout.yaxis.title.text === 'loss'"
    )
    curves = sorted(_trace_ys(page, "plot-curves"))
    assert curves == sorted([_loss(n, s) for s in (1, 2, 3)] for n in range(3))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "study-metric-picker.png"), full_page=True)

    page.goto(studied.url + "/studies/metrics/trials/1")
    page.wait_for_function("document.getElementById('trial-metric').options.length === 3")
    page.select_option("#trial-metric", "lr_now")
    page.wait_for_function(
        "document.getElementById('plot-curve').layout.yaxis.title.text === 'lr_now'"
    )
    assert _trace_ys(page, "plot-curve") == [[0.01, 0.005, 0.01 / 3]]


def test_trials_picked_in_the_table_open_side_by_side(studied: EmbeddedService, page: Any) -> None:
    page.goto(studied.url + "/studies/metrics")
    page.wait_for_selector("#trials-rows input.compare-pick")
    assert page.is_disabled("#compare-button")
    page.check("#trials-rows input.compare-pick[value='0']")
    assert page.is_disabled("#compare-button")  # one is not a comparison
    page.check("#trials-rows input.compare-pick[value='2']")
    assert page.inner_text("#compare-button") == "Compare 2"
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/studies/metrics/compare\?trials=0,2$"))
    page.wait_for_selector("#compare-rows tr[data-row='lr']")
    rows = page.locator("#compare-rows tr")
    marked = {
        row.get_attribute("data-row"): "differs" in (row.get_attribute("class") or "")
        for row in rows.all()
    }
    assert marked["status"] is False and marked["attempts"] is False  # both completed once
    assert marked["lr"] is True and marked["score"] is True
    page.wait_for_function("document.getElementById('plot-compare').data.length === 2")
    page.select_option("#compare-metric", "loss")
    page.wait_for_function(
        "document.getElementById('plot-compare').layout.yaxis.title.text === 'loss'"
    )
    assert _trace_ys(page, "plot-compare") == [[_loss(n, s) for s in (1, 2, 3)] for n in (0, 2)]
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    bad = httpx.get(studied.url + "/studies/metrics/compare?trials=1")
    assert bad.status_code == 422 and "trials" in bad.text


def test_times_show_in_the_browsers_time_zone_named(
    studied: EmbeddedService, chromium: Any
) -> None:
    context = chromium.new_context(timezone_id="Asia/Tokyo", locale="en-US")
    try:
        page = context.new_page()
        page.goto(studied.url + "/studies/metrics")
        page.wait_for_selector("time[data-local]")
        shown = page.locator("time[data-local]").first
        assert "GMT+9" in shown.inner_text()
        assert (shown.get_attribute("title") or "").endswith("UTC")  # the server's, on hover
    finally:
        context.close()


def test_the_trials_table_is_searched_and_narrowed_by_a_range(
    studied: EmbeddedService, page: Any
) -> None:
    trials = httpx.get(studied.url + "/api/v1/studies/metrics/trials").json()
    depths = sorted({t["params"]["depth"] for t in trials})
    cut = depths[0]
    page.goto(studied.url + "/studies/metrics")
    page.wait_for_selector("#trials-rows tr[data-number]")
    page.wait_for_function("document.getElementById('filter-param').options.length === 3")
    page.select_option("#filter-param", "depth")
    page.fill("#filter-high", str(cut))
    page.dispatch_event("#filter-high", "change")
    want = sorted(t["number"] for t in trials if t["params"]["depth"] <= cut)
    page.wait_for_function(
        f"document.querySelectorAll('#trials-rows tr[data-number]').length === {len(want)}"
    )
    shown = page.locator("#trials-rows tr[data-number]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.number))"
    )
    assert sorted(shown) == want
    page.fill("#filter-high", "")
    page.dispatch_event("#filter-high", "change")
    page.fill("#trial-search", "zzz-nothing")
    page.wait_for_selector("#trials-rows td.empty")
