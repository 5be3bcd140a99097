"""The spec's ``stopping:`` block takes its rule names and options from the stopping-rule
registry (``search.stopping_registry``): a new rule needs no spec edit, and a bad option
is refused naming its field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from hpo.demo import demo_spec
from hpo.spec import StudySpec
from search.status import Decision, Direction
from search.stopping import StoppingRule, int_option
from search.stopping_registry import STOPPING_RULES


def _spec(stopping: Any) -> StudySpec:
    return StudySpec.model_validate({**demo_spec(), "stopping": stopping})


def _field(stopping: Any) -> str:
    with pytest.raises(ValidationError) as info:
        _spec(stopping)
    error = info.value.errors()[0]
    assert error["type"] == "spec_field", error
    return str(error["ctx"]["field"])


def test_options_are_completed_and_stored_as_given_beside_the_rule() -> None:
    spec = _spec({"rule": "median", "warmup_steps": 1})
    stored = spec.model_dump()["stopping"]
    assert stored == {"rule": "median", "warmup_steps": 1, "min_trials": 5}
    assert _spec(stored).model_dump()["stopping"] == stored  # the stored spec re-validates
    assert _spec({}).model_dump()["stopping"] == {
        "rule": "median",
        "warmup_steps": 2,
        "min_trials": 5,
    }
    assert _spec(None).stopping is None


@pytest.mark.parametrize(
    ("stopping", "field"),
    [
        ({"rule": "percentile"}, "stopping.rule"),
        ({"rule": "median", "warmup_steps": -1}, "stopping.warmup_steps"),
        ({"min_trials": 0}, "stopping.min_trials"),
        ({"min_trials": "5"}, "stopping.min_trials"),
        ({"patience": 3}, "stopping.patience"),
    ],
)
def test_bad_stopping_block_names_the_field(stopping: dict[str, Any], field: str) -> None:
    assert _field(stopping) == field


class _Patience(StoppingRule):
    """Test rule: stop after ``patience`` steps when every peer is better."""

    name = "patience"

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        given = cls._check_option_keys(options, ("patience",))
        return {"patience": int_option(given, "patience", 3, 0, 100)}

    def decide(
        self, step: int, best_so_far: float, peer_bests: Sequence[float], direction: Direction
    ) -> Decision:
        return "continue"

    def reason(
        self, step: int, best_so_far: float, peer_bests: Sequence[float], direction: Direction
    ) -> str:
        return "patience"


def test_a_registered_rule_needs_no_spec_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _field({"rule": "patience"}) == "stopping.rule"
    monkeypatch.setitem(STOPPING_RULES, "patience", _Patience)
    assert _spec({"rule": "patience"}).model_dump()["stopping"] == {
        "rule": "patience",
        "patience": 3,
    }
    assert _field({"rule": "patience", "patience": 101}) == "stopping.patience"
    assert _field({"rule": "patience", "warmup_steps": 1}) == "stopping.warmup_steps"
