"""Projects in a real browser (the system Chromium): a user signs in and sees only the
projects they belong to, switches between them, creates a study in the chosen one and
finds it, with its creator, in the audit trail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpo.embedded import EmbeddedService
from hpo.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ADMIN = "projects-admin-token"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SPEC = """\
name: {name}
space:
  lr: {{type: float, low: 0.001, high: 0.3, log: true}}
strategy: {{name: random, seed: 1}}
budget: {{max_trials: 3, max_parallel: 1, epochs: 1}}
runner: external
"""


def _rows(page: Any) -> list[str]:
    return sorted(
        page.locator("#studies-rows tr[data-study]").evaluate_all(
            "rows => rows.map(r => r.dataset.study)"
        )
    )


def test_the_project_switcher_shows_only_your_projects_and_creates_in_the_chosen_one(
    tmp_path: Path, page: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'hpo.db'}",
        scheduler_interval=0.1,
        api_token=ADMIN,
    )
    with (
        EmbeddedService(settings, workers=0) as service,
        httpx.Client(
            base_url=service.url + "/api/v1", headers={"Authorization": f"Bearer {ADMIN}"}
        ) as admin,
    ):
        ana = admin.post("/tokens", json={"name": "ana"}).json()["token"]
        for project, role in (("alpha", "member"), ("bravo", "viewer")):
            assert admin.post("/projects", json={"name": project}).status_code == 201
            body = {"user": "ana", "role": role}
            assert admin.post(f"/projects/{project}/members", json=body).status_code == 200
        for name, project in (("a-study", "alpha"), ("b-study", "bravo"), ("d-study", None)):
            spec = admin.post("/studies/parse", json={"text": SPEC.format(name=name)}).json()
            created = admin.post("/studies", json=spec | ({"project": project} if project else {}))
            assert created.status_code == 201, created.text

        page.goto(service.url + "/login")
        page.fill("#token", ana)
        page.click("#login-button")
        page.wait_for_selector("#project-switcher")
        # Only her two projects: the default project's study is not hers to see.
        options = page.locator("#project-switcher option").all_inner_texts()
        assert options == ["All projects", "alpha", "bravo"]
        assert _rows(page) == ["a-study", "b-study"]

        page.select_option("#project-switcher", "alpha")
        page.wait_for_url(re.compile(r"/\?project=alpha$"))
        assert _rows(page) == ["a-study"]
        assert page.locator("#studies-rows td.project").all_inner_texts() == ["alpha"]

        # A spec naming no project joins the one chosen in the switcher.
        page.fill("#spec-text", SPEC.format(name="made-in-alpha"))
        page.click("#create-button")
        page.wait_for_url(re.compile(r"/studies/made-in-alpha$"))
        assert page.inner_text("#study-project") == "alpha"
        assert page.inner_text("#study-creator") == "ana"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "study-in-project.png"), full_page=True)

        # A viewer's project: the form's create is refused with the reason.
        page.goto(service.url + "/?project=bravo")
        page.fill("#spec-text", SPEC.format(name="not-in-bravo"))
        page.click("#create-button")
        page.wait_for_selector("#create-errors:not([hidden])")
        assert "viewer" in page.inner_text("#create-errors")

        page.goto(service.url + "/events")
        actions = page.locator("#events tr[data-action]").evaluate_all(
            "rows => rows.map(r => [r.dataset.action, r.cells[1].innerText, r.cells[4].innerText])"
        )
        assert ["study.create", "ana", "made-in-alpha"] in actions
        assert all(study != "d-study" for _, _, study in actions)
        page.screenshot(path=str(SHOTS / "audit-trail.png"), full_page=True)
