"""Webhooks against a real HTTP receiver started by the test, on both databases: each
event arrives signed (HMAC-SHA256 of the body under the hook's secret, as GitHub signs),
a receiver that fails is tried again with backoff, and every try is in the delivery
log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from hpo.embedded import EmbeddedService
from hpo.settings import Settings

#: Tries of a delivery in these tests (backoff 0.2, 0.4, 0.8 s between them).
TRIES = 4


class Receiver:
    """A real HTTP server on loopback that records every POST and answers with the
    next status of ``answers`` (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[str]:
        with self.lock:
            return [json.loads(body)["event"] for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    fast = settings.model_copy(update={"webhook_retry_base": 0.2, "webhook_max_attempts": TRIES})
    with (
        EmbeddedService(fast, workers=0) as service,
        httpx.Client(base_url=f"{service.url}/api/v1", timeout=30) as client,
    ):
        yield client


def _study(api: httpx.Client, make_spec, name: str, trials: int = 2) -> list[dict[str, Any]]:
    spec = make_spec(name, runner="external", budget={"max_trials": trials, "max_parallel": 5})
    assert api.post("/studies", json=spec).status_code == 201
    return api.post(f"/studies/{name}/suggest", params={"count": trials}).json()


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-hpo-signature-256"], expected)


def test_events_arrive_signed_and_a_failing_receiver_is_retried(
    api: httpx.Client, receiver: Receiver, make_spec, wait
) -> None:
    created = api.post(
        "/projects/default/webhooks",
        json={"url": receiver.url, "events": ["study.completed", "trial.failed"]},
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in api.get("/projects/default/webhooks").json()[0]
    receiver.answers = [500]  # the first delivery fails once

    leased = _study(api, make_spec, "hooked")
    failed = {"attempt": 1, "status": "failed", "error": "CUDA out of memory"}
    assert api.post(f"/trials/{leased[0]['trial_id']}/finish", json=failed).status_code == 200
    done = {"attempt": 1, "status": "completed", "value": 0.9}
    assert api.post(f"/trials/{leased[1]['trial_id']}/finish", json=done).status_code == 200

    wait(lambda: receiver.events().count("trial.failed") == 2, timeout=30)  # retried once
    wait(lambda: "study.completed" in receiver.events(), timeout=30)
    for headers, body in receiver.requests:
        assert _signed(secret, headers, body)
        assert headers["x-hpo-event"] == json.loads(body)["event"]
    trial_failed = json.loads(receiver.requests[0][1])
    assert trial_failed["trial"]["error"] == "CUDA out of memory"
    assert trial_failed["study"]["name"] == "hooked" and trial_failed["project"] == "default"
    completed = next(json.loads(b) for _, b in receiver.requests if b"study.completed" in b)
    assert completed["study"]["status"] == "completed"
    assert completed["study"]["best_value"] == 0.9

    log = wait(
        lambda: (
            (rows := api.get(f"/projects/default/webhooks/{hook['id']}/deliveries").json())
            and all(r["status"] == "delivered" for r in rows)
            and rows
        ),
        timeout=30,
    )
    by_event = {row["event"]: row for row in log}
    assert by_event["trial.failed"]["attempts"] == 2
    assert by_event["trial.failed"]["response_code"] == 200
    assert by_event["study.completed"]["attempts"] == 1
    # A forged body does not match the signature.
    headers, body = receiver.requests[0]
    assert not _signed(secret, headers, body.replace(b"CUDA", b"cuda"))


def test_study_hooks_hear_only_their_study_and_stops_are_told(
    api: httpx.Client, receiver: Receiver, make_spec, wait
) -> None:
    _study(api, make_spec, "watched", trials=3)
    _study(api, make_spec, "ignored", trials=3)
    body = {"url": receiver.url, "events": ["study.stopped"], "study": "watched"}
    assert api.post("/projects/default/webhooks", json=body).status_code == 201
    assert api.post("/studies/ignored/stop").status_code == 200
    assert api.post("/studies/watched/stop").status_code == 200
    wait(lambda: receiver.events() == ["study.stopped"], timeout=30)
    assert json.loads(receiver.requests[0][1])["study"]["name"] == "watched"
    events = api.get("/projects/default/events").json()
    assert any(e["action"] == "webhook.add" for e in events)


def test_a_receiver_that_never_answers_well_ends_failed(
    api: httpx.Client, receiver: Receiver, make_spec, wait
) -> None:
    receiver.answers = [503] * 100
    hook = api.post(
        "/projects/default/webhooks", json={"url": receiver.url, "events": ["study.stopped"]}
    ).json()
    _study(api, make_spec, "doomed")
    assert api.post("/studies/doomed/stop").status_code == 200
    path = f"/projects/default/webhooks/{hook['id']}/deliveries"
    row = wait(
        lambda: (rows := api.get(path).json()) and rows[0]["status"] == "failed" and rows[0],
        timeout=60,
    )
    assert row["attempts"] == TRIES
    assert row["response_code"] == 503 and "503" in row["error"]
    assert len(receiver.requests) == TRIES


def test_bad_hooks_are_422_naming_the_field(api: httpx.Client, make_spec) -> None:
    for body, field in (
        ({"url": "ftp://example.com/x", "events": ["study.failed"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": ["study.exploded"]}, "events"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["study.failed"], "study": "nope"}, "study"),
    ):
        answer = api.post("/projects/default/webhooks", json=body)
        assert answer.status_code == 422, body
        fields = {d["field"].split(".")[0] for d in answer.json()["detail"]}
        assert field in fields, answer.text
    assert api.delete("/projects/default/webhooks/99").status_code == 404
    assert api.get("/projects/nope/webhooks").status_code == 404
