"""What the dashboard serves besides its pages: HTML error pages for unknown studies,
trials and paths (the API keeps its JSON), plotly.js compressed and cached, a favicon;
and the client's message for a server URL with a wrong path."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hpo.client import Client
from hpo.errors import NotFound

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_unknown_studies_trials_and_paths_get_html_pages(live_server, make_spec) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        for path, text in (
            ("/studies/nope", "no study named &#39;nope&#39;"),
            ("/no/such/page", "There is no such page."),
        ):
            page = http.get(path, headers=HTML)
            assert page.status_code == 404, path
            assert page.headers["content-type"].startswith("text/html")
            assert text in page.text and 'id="error-page"' in page.text
        assert http.post("/api/v1/studies", json=make_spec("here")).status_code == 201
        trial = http.get("/studies/here/trials/99", headers=HTML)
        assert trial.status_code == 404 and "has no trial number 99" in trial.text
        # The API (and a client that does not ask for HTML) keeps JSON.
        api = http.get("/api/v1/studies/nope", headers=HTML)
        assert api.status_code == 404 and api.json() == {"detail": "no study named 'nope'"}
        assert http.get("/studies/nope").json() == {"detail": "no study named 'nope'"}


def test_plotly_is_served_compressed_and_cached_and_there_is_a_favicon(live_server) -> None:
    import plotly

    original = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    with httpx.Client(base_url=live_server.url) as http:
        raw = http.get("/static/plotly.min.js", headers={"accept-encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert int(raw.headers["content-length"]) < len(original) / 2
        assert raw.content == original  # httpx decompresses it
        assert "max-age" in raw.headers["cache-control"]
        plain = http.get("/static/plotly.min.js", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == original
        icon = http.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def test_a_server_url_with_a_wrong_path_says_so(live_server) -> None:
    with Client(live_server.url + "/wrong/path") as client, pytest.raises(NotFound) as caught:
        client.list_studies()
    message = caught.value.message
    assert "nothing answers at" in message and "/wrong/path/api/v1/studies" in message
    assert "no path after the port" in message
    with Client(live_server.url) as client, pytest.raises(NotFound) as missing:
        client.get_study("nope")
    assert missing.value.message == "no study named 'nope'"  # ours are not rewritten


def test_reads_are_compressed_and_writes_are_not(live_server, make_spec) -> None:
    with httpx.Client(base_url=live_server.url + "/api/v1") as api:
        spec = make_spec("packed", runner="external", budget={"max_trials": 30, "max_parallel": 30})
        assert api.post("/studies", json=spec).status_code == 201
        leased = api.post("/studies/packed/suggest", params={"count": 30})
        assert "content-encoding" not in leased.headers  # a write: as it was
        listed = api.get("/studies/packed/trials", headers={"accept-encoding": "gzip"})
        assert listed.headers["content-encoding"] == "gzip" and len(listed.json()) == 30
        plain = api.get("/studies/packed/trials", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == listed.json()
