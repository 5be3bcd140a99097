"""A study's resources: the pool and GPU rules, and the errors that name the field."""

from __future__ import annotations

from fractions import Fraction

import pytest
from pydantic import ValidationError

from hpo.jobs import pool_queue, queue_size
from hpo.resources import Resources, demand, fits, pool_error
from hpo.spec import StudySpec


def _spec(**extra: object) -> dict[str, object]:
    return {"name": "s", "space": {"lr": {"type": "float", "low": 0.1, "high": 1}}, **extra}


def test_defaults_keep_one_slot_in_the_default_pool_at_weight_one() -> None:
    spec = StudySpec.model_validate(_spec())
    assert (spec.resources.pool, spec.resources.gpus, spec.priority) == ("default", None, 1.0)
    assert (spec.resources.devices, spec.resources.per_gpu) == (0, 1)


@pytest.mark.parametrize(
    ("gpus", "devices", "per_gpu"), [(1, 1, 1), (4, 4, 1), (0.5, 1, 2), (0.25, 1, 4)]
)
def test_whole_gpus_and_shares(gpus: float, devices: int, per_gpu: int) -> None:
    resources = Resources(gpus=gpus)
    assert (resources.devices, resources.per_gpu) == (devices, per_gpu)


@pytest.mark.parametrize(
    ("gpus", "words"),
    [(0, "positive"), (-1, "positive"), (1.5, "whole devices"), (0.3, "1/k"), (65, "at most")],
)
def test_bad_gpus_name_the_field(gpus: float, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        StudySpec.model_validate(_spec(resources={"gpus": gpus}))
    (error,) = err.value.errors()
    assert error["loc"] == ("resources", "gpus") and words in error["msg"]


@pytest.mark.parametrize("field", [{"pool": "a 100"}, {"pool": ""}, {"pool": "a:b"}, {"cpus": 2}])
def test_bad_pools_and_unknown_keys_name_the_field(field: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as err:
        StudySpec.model_validate(_spec(resources=field))
    assert err.value.errors()[0]["loc"][0] == "resources"


@pytest.mark.parametrize("priority", [0, -1, 1001])
def test_priority_is_a_positive_weight(priority: float) -> None:
    with pytest.raises(ValidationError) as err:
        StudySpec.model_validate(_spec(priority=priority))
    assert err.value.errors()[0]["loc"] == ("priority",)


def test_fits_and_the_reason_no_worker_does() -> None:
    two = Resources(pool="a100", gpus=2)
    assert fits(two, 2) and fits(two, 8) and not fits(two, 1)
    assert fits(Resources(), 0) and fits(Resources(gpus=0.25), 1)
    assert pool_error(two, []) is None  # no worker yet: the study may wait
    assert pool_error(two, [1, 4]) is None
    reason = pool_error(two, [1, 1])
    assert reason is not None and "2 GPUs" in reason and "1 GPU " in reason and "a100" in reason
    assert "no GPU" in (pool_error(Resources(gpus=1), [0]) or "")


def test_each_pool_has_its_own_queue_and_default_keeps_todays_name() -> None:
    assert pool_queue("hpo-trials", "default") == "hpo-trials"
    assert pool_queue("hpo-trials", "a100") == "hpo-trials:a100"


def test_each_size_has_its_own_queue_and_a_worker_reads_its_size_back() -> None:
    assert pool_queue("hpo-trials", "default", 1) == "hpo-trials"
    assert pool_queue("hpo-trials", "a100", 2) == "hpo-trials:a100:gpus=2"
    assert pool_queue("hpo-trials", "default", 0.25) == "hpo-trials:gpus=1/4"
    for pool in ("default", "a100"):
        for gpus in (None, 1, 2, 4, 0.5, 0.25, 1 / 64):
            name = pool_queue("hpo-trials", pool, gpus)
            assert queue_size(name, "hpo-trials", pool) == demand(gpus)
    assert queue_size("hpo-trials:a100", "hpo-trials", "default") is None  # another pool
    assert queue_size("hpo-trials:a100:gpus=2", "hpo-trials", "v100") is None
    assert queue_size("other", "hpo-trials", "default") is None
    assert queue_size("hpo-trials:gpus=x", "hpo-trials", "default") is None
    assert queue_size("hpo-trials:gpus=0", "hpo-trials", "default") is None
    assert demand(0.25) == Fraction(1, 4) and 4 * demand(0.25) == 1
