"""The search space: an ordered set of named parameters, and its serialized form.

Users write a space as a mapping ``name -> spec`` (YAML or JSON, under ``space:``)::

    lr:         {type: float, low: 1.0e-4, high: 0.1, log: true}
    layers:     {type: int, low: 1, high: 4, step: 1, log: false}
    optimizer:  {type: categorical, choices: [adam, sgd]}
    activation: [relu, gelu]          # shorthand: a bare list is a categorical

Any spec may carry ``when: {parent: [allowed values]}`` (a scalar is a one-item list;
several parents must all hold): the parameter is *active*, i.e. part of a point, only
while each parent is active and takes one of the listed values::

    model:   {type: categorical, choices: [mlp, cnn]}
    units:   {type: int, low: 32, high: 256, log: true, when: {model: mlp}}
    filters: {type: int, low: 8, high: 64, log: true, when: {model: cnn}}

A parent must be a categorical declared before the child, so declaration order is a
dependency order (cycles cannot be written) and a point can be drawn in one pass.
A point holds exactly its active parameters: inactive ones are absent, not null.

``SearchSpace.from_dict`` validates all of it and raises ``SpaceError`` whose
``field`` is the dotted path of the first problem (``"lr.low"``, ``"space"``...).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from search.checks import NAME_PATTERN, check_name, choice_key, show_value
from search.errors import SpaceError
from search.params import CategoricalParam, Condition, FloatParam, IntParam

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAX_PARAMS",
    "NAME_PATTERN",
    "CategoricalParam",
    "Condition",
    "FloatParam",
    "IntParam",
    "Param",
    "SearchSpace",
    "SpaceError",
    "did_you_mean",
    "param_errors",
    "param_from_spec",
    "space_errors",
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


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` to a misspelt ``word``, or
    "" when none is close."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown_keys(name: str, spec: Mapping[Any, Any]) -> list[SpaceError]:
    """Keys no parameter type has, each with the key it most likely meant."""
    every = {"type", *(k for cls in _KINDS.values() for k in cls.spec_keys)}
    return [
        SpaceError(f"{name}.{key}", f"unknown key{did_you_mean(str(key), every)}")
        for key in spec
        if key not in every
    ]


def param_errors(name: Any, spec: Any) -> list[SpaceError]:
    """Every problem of one parameter's spec (empty when it is valid): a misspelt key
    comes with the key it most likely meant, and does not hide the others."""
    try:
        param_from_spec(name, spec)
    except SpaceError as first:
        if not isinstance(name, str) or not isinstance(spec, Mapping):
            return [first]
        unknown = [e for e in _unknown_keys(name, spec) if e.field != first.field]
        meant_type = any(e.message.endswith("'type'?") for e in unknown)
        if first.field == f"{name}.type" and meant_type:
            return unknown  # "tpye" explains the missing type better than "is required"
        found = [first, *unknown]
        return found
    return []


def space_errors(data: Any) -> list[SpaceError]:
    """Every problem of a serialized space, parameter by parameter (empty when it
    parses), so a user fixes them all in one go."""
    if not isinstance(data, Mapping) or not data or len(data) > MAX_PARAMS:
        try:
            SearchSpace.from_dict(data)
        except SpaceError as err:
            return [err]
    found = [err for name, spec in data.items() for err in param_errors(name, spec)]
    if not found:
        try:
            SearchSpace.from_dict(data)  # what spans parameters: conditions, duplicates
        except SpaceError as err:
            found.append(err)
    return found


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
                f"{name}.{key}",
                f"unknown key for type {kind}{did_you_mean(str(key), cls.spec_keys)}; "
                f"allowed keys: {allowed}",
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

    __slots__ = ("_by_name", "_conditions", "params")

    def __init__(self, params: Iterable[Param]) -> None:
        """Build from parameter objects; raises ``SpaceError`` (field ``"space"`` for
        an empty or oversized space, the parameter name for a duplicate,
        ``"<name>.when.<parent>"`` for a condition on an unknown, later or
        non-categorical parent or on a value that is not one of its choices)."""
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
            _check_condition(p, by_name)
            by_name[p.name] = p
        self.params: tuple[Param, ...] = items
        self._by_name = by_name
        # name -> ((parent, allowed choice keys), ...): membership tests by choice_key so
        # that True never satisfies a condition on 1 (the same rule as choices).
        self._conditions: dict[str, tuple[tuple[str, frozenset[Any]], ...]] = {
            p.name: tuple(
                (parent, frozenset(choice_key(v) for v in values)) for parent, values in p.when
            )
            for p in items
            if p.when
        }

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

    @property
    def conditional(self) -> bool:
        """True when some parameter has a ``when`` condition."""
        return bool(self._conditions)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether parameter ``name`` belongs to a point whose values are ``params``.

        True for an unconditional parameter; otherwise every parent must itself be
        active and ``params[parent]`` one of the allowed values (a missing or
        out-of-domain parent value makes the child inactive). Only ``name``'s
        ancestors are read. ``KeyError`` if ``name`` is not a parameter of this space.
        """
        if name not in self._by_name:
            raise KeyError(name)
        if name not in self._conditions:
            return True
        failed: dict[str, str | None] = {}
        for p in self.params:
            failed[p.name] = self._failed_condition(p.name, params, failed)
            if p.name == name:
                break
        return failed[name] is None

    def active_names(self, params: Mapping[str, Any]) -> list[str]:
        """Names of the parameters active under ``params``, in declaration order."""
        failed: dict[str, str | None] = {}
        for p in self.params:
            failed[p.name] = self._failed_condition(p.name, params, failed)
        return [name for name, parent in failed.items() if parent is None]

    def project(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` restricted to its active parameters, in declaration order.

        Missing active parameters stay missing; unknown keys are dropped. For an
        unconditional space this only reorders and drops unknown keys.
        """
        return {name: params[name] for name in self.active_names(params) if name in params}

    def _failed_condition(
        self, name: str, params: Mapping[str, Any], failed: Mapping[str, str | None]
    ) -> str | None:
        """None when ``name`` is active, else the first parent whose condition fails.

        ``failed`` must hold the answer for every parent already: callers walk the
        parameters in declaration order, where parents come first. That keeps this
        loop-free of recursion (a chain of thousands of conditions is legal) and it
        formats no message (a hot path for model-based strategies)."""
        for parent, allowed in self._conditions.get(name, ()):
            if (
                failed[parent] is not None
                or parent not in params
                or choice_key(params[parent]) not in allowed
            ):
                return parent
        return None

    def _why_inactive(self, parent: str, params: Mapping[str, Any]) -> str:
        """The end of an "inactive: ..." message: ``"model is cnn"``."""
        if not self.is_active(parent, params):
            return f"{parent} is inactive"
        if parent not in params:
            return f"{parent} is not set"
        return f"{parent} is {show_value(params[parent])}"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One independent draw per active parameter, in declaration order, as plain
        Python values. Parents come first, so each child sees its parents' draws;
        inactive parameters draw nothing (an unconditional space uses the generator
        exactly as it always did)."""
        point: dict[str, Any] = {}
        failed: dict[str, str | None] = {}
        for p in self.params:
            failed[p.name] = self._failed_condition(p.name, point, failed)
            if failed[p.name] is None:
                point[p.name] = p.sample(rng)
        return point

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True when ``params`` has exactly the active names, every value inside."""
        try:
            self.check(params)
        except SpaceError:
            return False
        return True

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ``SpaceError`` naming the first offending parameter, if any.

        Field is ``"params"`` when ``params`` is not a mapping, otherwise the name of
        the missing, unknown, out-of-domain or inactive-but-present parameter (message
        ``"inactive: model is cnn"``). Parameters are checked in declaration order, so a
        child is judged against parents already known to be valid.
        """
        if not isinstance(params, Mapping):
            raise SpaceError("params", "must be a mapping of parameter name to value")
        failures: dict[str, str | None] = {}
        for p in self.params:
            failed = failures[p.name] = self._failed_condition(p.name, params, failures)
            if failed is not None:
                if p.name in params:
                    raise SpaceError(p.name, f"inactive: {self._why_inactive(failed, params)}")
                continue
            if p.name not in params:
                raise SpaceError(p.name, "missing")
            if not p.contains(params[p.name]):
                raise SpaceError(p.name, f"{params[p.name]!r} is not {p.describe()}")
        for key in params:
            if key not in self._by_name:
                raise SpaceError(str(key), "unknown parameter; not in the search space")


def _check_condition(param: Param, earlier: Mapping[str, Param]) -> None:
    """Check ``param.when`` against the parameters declared before it."""
    for parent, values in param.when:
        field = f"{param.name}.when.{parent}"
        if parent == param.name:
            raise SpaceError(field, "a parameter cannot depend on itself")
        if parent not in earlier:
            raise SpaceError(
                field, f"the parent must be a parameter declared before {param.name!r}"
            )
        owner = earlier[parent]
        if not isinstance(owner, CategoricalParam):
            raise SpaceError(field, f"the parent must be categorical; {parent!r} is {owner.kind}")
        for value in values:
            if not owner.contains(value):
                raise SpaceError(
                    field, f"{value!r} is not one of {parent}'s choices {list(owner.choices)!r}"
                )
