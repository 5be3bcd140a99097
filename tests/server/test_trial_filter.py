"""The trials listing narrowed by parameter ranges and a search text, over real HTTP on
both databases: the page and the total hold exactly the trials that pass, in the
listing's order; bad filters are 422 naming the field."""

from __future__ import annotations

import httpx


def _study(api: httpx.Client, make_spec) -> list[dict]:
    spec = make_spec(
        "narrow",
        runner="external",
        space={
            "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
        budget={"max_trials": 12, "max_parallel": 12},
    )
    assert api.post("/studies", json=spec).status_code == 201
    leased = api.post("/studies/narrow/suggest", params={"count": 12}).json()
    for lease in leased:
        body = {"attempt": 1, "status": "completed", "value": lease["number"] / 10}
        if lease["number"] % 4 == 0:
            body = {"attempt": 1, "status": "failed", "error": "CUDA out of memory"}
        assert api.post(f"/trials/{lease['trial_id']}/finish", json=body).status_code == 200
    return api.get("/studies/narrow/trials", params={"limit": 100}).json()


def test_ranges_and_search_narrow_the_listing(api: httpx.Client, make_spec) -> None:
    every = _study(api, make_spec)
    low, high = sorted(t["params"]["lr"] for t in every)[3], 0.05
    ranged = api.get(
        "/studies/narrow/trials",
        params={"param": f"lr:{low}:{high}", "sort": "value", "order": "desc"},
    )
    want = [t for t in every if low <= t["params"]["lr"] <= high]
    assert int(ranged.headers["x-total-count"]) == len(want)
    # Best first, the failed ones (no value) last, ties by number.
    valued = sorted((t for t in want if t["value"] is not None), key=lambda t: -t["value"])
    failed = sorted((t for t in want if t["value"] is None), key=lambda t: t["number"])
    assert [t["number"] for t in ranged.json()] == [t["number"] for t in valued + failed]

    both = api.get(
        "/studies/narrow/trials", params=[("param", "lr::0.05"), ("param", "optimizer=adam")]
    ).json()
    assert {t["number"] for t in both} == {
        t["number"]
        for t in every
        if t["params"]["lr"] <= 0.05 and t["params"]["optimizer"] == "adam"
    }
    cuda = api.get("/studies/narrow/trials", params={"q": "cuda", "limit": 2})
    assert int(cuda.headers["x-total-count"]) == 3 and len(cuda.json()) == 2
    assert all(t["status"] == "failed" for t in cuda.json())
    second = api.get("/studies/narrow/trials", params={"q": "cuda", "limit": 2, "offset": 2})
    assert [t["number"] for t in second.json()] == [8]
    sgd = api.get("/studies/narrow/trials", params={"q": "optimizer=sgd", "status": "completed"})
    assert all(t["params"]["optimizer"] == "sgd" and t["status"] == "completed" for t in sgd.json())


def test_bad_filters_are_422_naming_the_field(api: httpx.Client, make_spec) -> None:
    _study(api, make_spec)
    for params, field in (
        ({"param": "lr"}, "param.0"),
        ({"param": "lr:abc:1"}, "param.0"),
        ({"param": "lr:nan:"}, "param.0"),
        ({"q": "x", "cursor": "abc"}, "cursor"),
        ({"q": ""}, "q"),
    ):
        answer = api.get("/studies/narrow/trials", params=params)
        assert answer.status_code == 422, params
        assert answer.json()["detail"][0]["field"] == field, answer.text
