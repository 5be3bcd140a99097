"""``train.entrypoint``: a study that trains the user's own function. Only its shape is
checked (the server never imports it); the built-in model checks are skipped; the rest
of the spec is validated as always; a bad entrypoint is a 422 naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from hpo.embedded import EmbeddedService
from hpo.settings import Settings
from hpo.spec import StudySpec, TrainSpec, load_spec_file

ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "name": "own-code",
    "objective": {"metric": "val_f1", "direction": "maximize"},
    "space": {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "tokenizer": {"type": "categorical", "choices": ["bpe", "char"]},
        "model": {"type": "categorical", "choices": ["resnet", "vit"]},
    },
    "strategy": {"name": "random", "seed": 1},
    "budget": {"max_trials": 4, "max_parallel": 2, "epochs": 3},
    "train": {"entrypoint": "mypkg.training:fit", "params": {"warmup": 100, "amp": True}},
}


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return data


def field_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        StudySpec.model_validate(data)
    error = info.value.errors()[0]
    assert error["type"] == "spec_field", error
    return str(error["ctx"]["field"])


def test_an_entrypoint_study_takes_any_parameter_names() -> None:
    study = StudySpec.model_validate(spec())
    assert study.train.entrypoint == "mypkg.training:fit"
    assert study.train.params == {"warmup": 100, "amp": True}
    assert study.objective.direction == "maximize"
    # model and dataset are not used; anything goes
    assert StudySpec.model_validate(spec(train__dataset="my-own-data", train__model="vit"))


def test_the_stored_spec_round_trips() -> None:
    """The SDK sends ``model_dump`` of a StudySpec; the server stores it and rebuilds the
    TrainSpec for each trial."""
    dumped = StudySpec.model_validate(spec()).model_dump(mode="json")
    again = StudySpec.model_validate(dumped)
    assert TrainSpec.model_validate(dumped["train"]) == again.train


@pytest.mark.parametrize(
    "entrypoint",
    [
        "",
        "fit",
        "mypkg.training",
        "mypkg.training:",
        ":fit",
        "mypkg..training:fit",
        ".training:fit",
        "mypkg.training:fit.run",
        "mypkg.training:fit()",
        "my pkg:fit",
        "1pkg:fit",
        "mypkg:training:fit",
        "mypkg/training.py:fit",
        "mypkg.training:fit\n",
    ],
)
def test_a_malformed_entrypoint_is_refused_naming_the_field(entrypoint: str) -> None:
    assert field_of(spec(train__entrypoint=entrypoint)) == "train.entrypoint"


@pytest.mark.parametrize("entrypoint", ["fit:train", "a.b.c_d:_run2", "My_Pkg.v2.Train:Fit"])
def test_well_formed_entrypoints_pass(entrypoint: str) -> None:
    assert StudySpec.model_validate(spec(train__entrypoint=entrypoint))


def test_a_custom_metric_needs_a_direction() -> None:
    assert field_of(spec(objective={"metric": "val_f1"})) == "objective.direction"
    builtin_name = StudySpec.model_validate(spec(objective={"metric": "val_loss"}))
    assert builtin_name.objective.direction == "minimize"


def test_the_rest_of_the_spec_is_still_validated() -> None:
    bad_space = spec()
    bad_space["space"]["lr"] = {"type": "float", "low": 0.1, "high": 0.01}
    assert field_of(bad_space).startswith("space.lr")
    assert field_of(spec(train__params={"lr": 0.1})) == "train.params.lr"  # also searched
    assert field_of(spec(train__params={"scale": float("nan")})) == "train.params.scale"
    assert field_of(spec(strategy={"name": "hyperband", "options": {"eta": 1}})).startswith(
        "strategy.options"
    )


def test_without_an_entrypoint_unknown_parameters_are_still_refused() -> None:
    data = spec()
    del data["space"]["model"]
    data["train"] = {"model": "mlp", "dataset": "digits"}
    data["objective"] = {"metric": "val_accuracy"}
    assert field_of(data) == "space.tokenizer"


def test_the_shipped_example_names_an_entrypoint() -> None:
    study = StudySpec.model_validate(load_spec_file(ROOT / "examples" / "custom-trainable.yaml"))
    assert study.train.entrypoint == "examples.custom_train:train"


def test_the_api_answers_422_naming_train_entrypoint(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'hpo.db'}")
    with EmbeddedService(settings, workers=0) as service:
        with httpx.Client(base_url=f"{service.url}/api/v1", timeout=30) as api:
            answer = api.post("/studies", json=spec(train__entrypoint="not an entrypoint"))
            assert answer.status_code == 422
            detail = answer.json()["detail"]
            assert detail[0]["field"] == "train.entrypoint"
            assert "package.module:function" in detail[0]["msg"]
            assert api.get("/studies").json() == []  # nothing half-written
            good = api.post("/studies", json=spec())
            assert good.status_code in (200, 201), good.text


def test_a_distributed_launch_needs_an_entrypoint_and_a_sane_process_count() -> None:
    assert StudySpec.model_validate(spec(train__processes=4)).train.processes == 4
    built_in = spec(train__processes=2)
    del built_in["train"]["entrypoint"]
    built_in["objective"] = {"metric": "val_accuracy"}
    built_in["space"] = {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}}
    built_in["train"]["params"] = {}
    assert field_of(built_in) == "train.processes"
    for bad in (0, 65, "two"):
        with pytest.raises(ValidationError, match=r"train\.processes"):
            StudySpec.model_validate(spec(train__processes=bad))
