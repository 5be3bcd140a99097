"""The search space: an ordered set of named parameters, and its serialized form.

Users write a space as a mapping ``name -> spec`` (YAML or JSON, under ``space:``)::

    lr:         {type: float, low: 1.0e-4, high: 0.1, log: true}
    layers:     {type: int, low: 1, high: 4, step: 1, log: false}
    optimizer:  {type: categorical, choices: [adam, sgd]}
    activation: [relu, gelu]          # shorthand: a bare list is a categorical

``SearchSpace.from_dict`` validates all of it and raises ``SpaceError`` whose
``field`` is the dotted path of the first problem (``"lr.low"``, ``"space"``...).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeAlias

import numpy as np

from search.checks import NAME_PATTERN, check_name
from search.errors import SpaceError
from search.params import CategoricalParam, FloatParam, IntParam

__all__ = [
    "MAX_PARAMS",
    "NAME_PATTERN",
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Param",
    "SearchSpace",
    "SpaceError",
    "param_from_spec",
]

Param: TypeAlias = FloatParam | IntParam | CategoricalParam

MAX_PARAMS = 10_000

_KINDS: dict[str, type[FloatParam] | type[IntParam] | type[CategoricalParam]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "float": ("low", "high"),
    "int": ("low", "high"),
    "categorical": ("choices",),
}


def param_from_spec(name: Any, spec: Any) -> Param:
    """Build one parameter from its serialized spec; raise ``SpaceError`` if invalid.

    ``spec`` is a mapping with a ``type`` key, or a list (categorical shorthand).
    """
    # Checked first so that every later field path starts with a valid name.
    name = check_name(name)
    if isinstance(spec, (list, tuple)):
        return CategoricalParam(name, tuple(spec))
    if not isinstance(spec, Mapping):
        raise SpaceError(
            name, "must be a mapping with a 'type' key, or a list of choices (categorical)"
        )
    known = ", ".join(_KINDS)
    if "type" not in spec:
        raise SpaceError(f"{name}.type", f"is required; one of: {known}")
    kind = spec["type"]
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SpaceError(f"{name}.type", f"unknown type {kind!r}; one of: {known}")
    for key in spec:
        if key not in cls.spec_keys:
            allowed = ", ".join(sorted(cls.spec_keys))
            raise SpaceError(
                f"{name}.{key}", f"unknown key for type {kind}; allowed keys: {allowed}"
            )
    for key in _REQUIRED[kind]:
        if key not in spec:
            raise SpaceError(f"{name}.{key}", f"is required for type {kind}")
    kwargs = {str(k): v for k, v in spec.items() if k != "type"}
    return cls(name=name, **kwargs)


class SearchSpace:
    """An ordered, non-empty collection of uniquely named parameters (treat as immutable).

    Equality and hashing follow the parameters (names, order, domains).
    """

    __slots__ = ("_by_name", "params")

    def __init__(self, params: Iterable[Param]) -> None:
        """Build from parameter objects; raises ``SpaceError`` (field ``"space"`` for
        an empty or oversized space, the parameter name for a duplicate)."""
        items = tuple(params)
        if not items:
            raise SpaceError("space", "must define at least one parameter")
        if len(items) > MAX_PARAMS:
            raise SpaceError("space", f"has {len(items)} parameters; at most {MAX_PARAMS}")
        by_name: dict[str, Param] = {}
        for p in items:
            if not isinstance(p, (FloatParam, IntParam, CategoricalParam)):
                raise SpaceError("space", f"not a parameter: {p!r}")
            if p.name in by_name:
                raise SpaceError(p.name, "duplicate parameter name")
            by_name[p.name] = p
        self.params: tuple[Param, ...] = items
        self._by_name = by_name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Parse the serialized form (see module docstring), validating everything."""
        if not isinstance(data, Mapping):
            raise SpaceError("space", "must be a mapping of parameter name to spec")
        if not data:
            raise SpaceError("space", "must define at least one parameter")
        # Check the size before parsing so a huge document fails fast.
        if len(data) > MAX_PARAMS:
            raise SpaceError("space", f"has {len(data)} parameters; at most {MAX_PARAMS}")
        return cls(param_from_spec(name, spec) for name, spec in data.items())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The serialized form; ``from_dict(space.to_dict()) == space``."""
        return {p.name: p.to_dict() for p in self.params}

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in order."""
        return tuple(self._by_name)

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        """The parameter called ``name``; ``KeyError`` if there is none."""
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self.params == other.params

    def __hash__(self) -> int:
        return hash(self.params)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self.params)!r})"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One independent draw per parameter, in order, as plain Python values."""
        return {p.name: p.sample(rng) for p in self.params}

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True when ``params`` has exactly this space's names, every value inside."""
        try:
            self.check(params)
        except SpaceError:
            return False
        return True

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ``SpaceError`` naming the first offending parameter, if any.

        Field is ``"params"`` when ``params`` is not a mapping, otherwise the name of
        the missing, unknown or out-of-domain parameter.
        """
        if not isinstance(params, Mapping):
            raise SpaceError("params", "must be a mapping of parameter name to value")
        for p in self.params:
            if p.name not in params:
                raise SpaceError(p.name, "missing")
            if not p.contains(params[p.name]):
                raise SpaceError(p.name, f"{params[p.name]!r} is not {p.describe()}")
        for key in params:
            if key not in self._by_name:
                raise SpaceError(str(key), "unknown parameter; not in the search space")
