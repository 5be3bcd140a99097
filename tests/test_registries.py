"""The project's registries share one shape (``search.registry`` describes it): a table
of name -> entry, ``<kind>_names()`` sorted, ``get_<kind>(name)`` returning the table's
entry or raising an error that names the spec field and lists the known names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

import models
import search.registry
import search.stopping_registry

#: kind -> (table, names(), get(name), the field an unknown name is reported on)
REGISTRIES: dict[str, tuple[Mapping[str, Any], Callable[[], list[str]], Callable, str]] = {
    "strategy": (
        search.registry.STRATEGIES,
        search.registry.strategy_names,
        search.registry.get_strategy,
        "strategy.name",
    ),
    "stopping rule": (
        search.stopping_registry.STOPPING_RULES,
        search.stopping_registry.stopping_rule_names,
        search.stopping_registry.get_stopping_rule,
        "stopping.rule",
    ),
    "model": (models.MODELS, models.model_names, models.get_model, "train.model"),
    "dataset": (models.DATASETS, models.dataset_names, models.get_dataset, "train.dataset"),
}


@pytest.mark.parametrize("kind", REGISTRIES)
def test_names_are_the_sorted_table_and_get_returns_its_entries(kind: str) -> None:
    table, names, get, _ = REGISTRIES[kind]
    assert names() == sorted(table) and names()
    for name in names():
        assert get(name) is table[name]


@pytest.mark.parametrize("kind", REGISTRIES)
@pytest.mark.parametrize("name", ["no-such-thing", 3, None])
def test_an_unknown_name_names_the_field_and_the_known_names(kind: str, name: object) -> None:
    _, names, get, field = REGISTRIES[kind]
    with pytest.raises((KeyError, ValueError)) as info:
        get(name)
    assert info.value.field == field  # type: ignore[attr-defined]
    assert f"unknown {kind} {name!r}; known: {', '.join(names())}" in str(info.value)


def test_strategies_load_on_first_lookup_only() -> None:
    """``search.registry`` names each strategy as "module:Class": listing them imports
    none (what the spec's schema and ``hpo --help`` do); a lookup imports that one."""
    table = search.registry.LazyTable({"lazy": "search.no_such_module:Nothing"})
    assert list(table) == ["lazy"] and "lazy" in table and len(table) == 1
    with pytest.raises(ModuleNotFoundError):
        table["lazy"]
    assert search.registry.LazyTable({"r": "search.random:RandomStrategy"})["r"].name == "random"
