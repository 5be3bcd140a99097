"""The study spec schema: shipped examples and the demo validate; files load with clear
errors; the catalog the server validates against matches what models/ registers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hpo.catalog import BUILTIN_DATASETS, BUILTIN_MODELS
from hpo.demo import DEMO_SPACE, demo_spec
from hpo.spec import StudySpec, load_spec_file, parse_spec_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_example_validates(example: Path) -> None:
    spec = StudySpec.model_validate(load_spec_file(example))
    assert spec.train.dataset == "digits"


def test_demo_space_is_the_mlp_cnn_example() -> None:
    data = load_spec_file(ROOT / "examples" / "digits-cnn-mlp.yaml")
    assert StudySpec.model_validate(data).space == DEMO_SPACE


@pytest.mark.parametrize("strategy", ["random", "grid", "bayes", "evolution", "hyperband", "asha"])
def test_demo_spec_validates_for_each_demo_strategy(strategy: str) -> None:
    spec = StudySpec.model_validate(demo_spec(strategy=strategy, trials=5))
    assert spec.strategy.name == strategy
    assert spec.budget.max_trials == 5


def test_semantic_error_names_the_dotted_field() -> None:
    data = demo_spec()
    data["space"]["lr"] = {"type": "float", "low": 0.1, "high": 0.01}
    with pytest.raises(ValidationError) as info:
        StudySpec.model_validate(data)
    error = info.value.errors()[0]
    assert error["type"] == "spec_field"
    assert error["ctx"]["field"].startswith("space.lr")
    assert str(error["msg"]).startswith("space.lr")


def test_load_spec_file_errors_are_readable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_spec_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_spec_file(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ValueError, match="mapping"):
        load_spec_file(scalar)
    as_json = tmp_path / "spec.json"
    as_json.write_text('{"name": "j", "space": {"x": [1, 2]}}')
    assert load_spec_file(as_json)["name"] == "j"


def test_spec_text_comes_back_as_json_data_or_a_named_error() -> None:
    assert parse_spec_text("a: '2020-01-02'\nb: [1, {c: x}]") == {
        "a": "2020-01-02",
        "b": [1, {"c": "x"}],
    }
    with pytest.raises(ValueError, match=r"date at space\.opt\.0 \(2020-01-02\).*quote it"):
        parse_spec_text("space: {opt: [2020-01-02, relu]}")
    with pytest.raises(ValueError, match="not a string"):
        parse_spec_text("?")
    with pytest.raises(ValueError, match=r"not finite at space\.lr\.low"):
        parse_spec_text("space: {lr: {low: .inf}}")
    with pytest.raises(ValueError, match="set value at tags"):
        parse_spec_text("tags: !!set {x}")
    # Aliases that expand exponentially stop early instead of filling memory.
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        laughs += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    with pytest.raises(ValueError, match="too large"):
        parse_spec_text(laughs)


def test_catalog_matches_the_models_registries() -> None:
    from models import dataset_names, model_names

    assert sorted(BUILTIN_MODELS) == sorted(model_names())
    assert sorted(BUILTIN_DATASETS) == sorted(dataset_names())
