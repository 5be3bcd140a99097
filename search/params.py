"""Search-space parameters: one dimension of a search space each.

A parameter is an immutable value object. Building one validates it (``SpaceError``
naming ``"<name>.<key>"``), so an instance that exists is always usable: bounds are
finite, ``low < high``, log scale implies ``low > 0``, choices are unique JSON scalars.

Every parameter offers the same small protocol, used by strategies:

* ``sample(rng)`` draws one plain Python value (``float``/``int``/the choice itself);
* ``contains(value)`` is a type-aware membership test (an int parameter rejects
  ``1.5`` and ``True``; a categorical never confuses ``True`` with ``1``);
* ``grid(points)`` lists the values this dimension contributes to a grid;
* ``canonical(value)`` maps a contained value to a hashable key that survives a JSON
  round trip, so two trials with "the same" parameters compare equal;
* ``to_dict()`` gives the serialized spec that ``search.space.param_from_spec`` reads.

Any parameter may be *conditional*: ``when`` holds ``(parent, allowed values)`` pairs
and the parameter exists only while every parent is active and takes one of its
allowed values (see ``search.space.SearchSpace.is_active``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from search.checks import (
    FLOAT_KEY_DIGITS,
    check_name,
    check_points,
    check_when,
    choice_key,
    dedupe,
    finite_float,
    flag,
    integer,
    is_int,
    is_number,
)
from search.errors import SpaceError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CategoricalParam", "Condition", "FloatParam", "IntParam"]

#: A parameter's activation condition: ``((parent, (allowed, ...)), ...)``, sorted by
#: parent name; ``()`` for an unconditional parameter. A tuple so parameters stay hashable.
Condition = tuple[tuple[str, tuple[Any, ...]], ...]


def _normalize_when(param: Any, name: str) -> None:
    """Validate and store ``param.when`` in its canonical form (frozen dataclass)."""
    if param.when != ():
        object.__setattr__(param, "when", check_when(name, param.when))


def _with_when(spec: dict[str, Any], when: Condition) -> dict[str, Any]:
    """Add the serialized ``when`` mapping to ``spec`` when there is a condition."""
    if when:
        spec["when"] = {parent: list(values) for parent, values in when}
    return spec


@dataclass(frozen=True, slots=True)
class FloatParam:
    """A real-valued parameter on ``[low, high]``, uniform or log-uniform."""

    name: str
    low: float
    high: float
    log: bool = False
    when: Condition = ()

    kind: ClassVar[str] = "float"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"type", "low", "high", "log", "when"})

    def __post_init__(self) -> None:
        name = check_name(self.name)
        low = finite_float(f"{name}.low", self.low)
        high = finite_float(f"{name}.high", self.high)
        log = flag(f"{name}.log", self.log)
        if not low < high:
            raise SpaceError(f"{name}.low", f"low must be less than high (low={low}, high={high})")
        if log and low <= 0:
            raise SpaceError(f"{name}.low", f"must be > 0 when log is true, got {low}")
        if not math.isfinite(high - low):
            # uniform(low, high) would overflow to inf.
            raise SpaceError(f"{name}.high", "high - low must be a finite number")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        _normalize_when(self, name)

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one float in ``[low, high]`` (log-uniform when ``log``)."""
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = float(rng.uniform(self.low, self.high))
        # exp/log rounding can step one ulp outside the bounds.
        return min(max(x, self.low), self.high)

    def contains(self, value: Any) -> bool:
        """True for a finite real number (int or float, not bool) within the bounds."""
        if not is_number(value):
            return False
        try:
            x = float(value)
        except OverflowError:
            return False
        return self.low <= x <= self.high

    def grid(self, points: int) -> list[float]:
        """``points`` evenly spaced values (geometric when ``log``), both ends included."""
        check_points(points)
        import numpy as np  # here: importing the parameter types stays light

        if self.log:
            raw = np.geomspace(self.low, self.high, points)
        else:
            raw = np.linspace(self.low, self.high, points)
        values = [min(max(float(x), self.low), self.high) for x in raw]
        values[0], values[-1] = self.low, self.high
        return dedupe(values, self.canonical)

    def canonical(self, value: Any) -> float:
        """Hashable comparison key for a contained value."""
        return float(f"{float(value):.{FLOAT_KEY_DIGITS}g}")

    def describe(self) -> str:
        """Human-readable domain, for error messages."""
        scale = ", log scale" if self.log else ""
        return f"a number in [{self.low}, {self.high}]{scale}"

    def to_dict(self) -> dict[str, Any]:
        """The serialized spec, as users write it under ``space:``."""
        spec = {"type": "float", "low": self.low, "high": self.high, "log": self.log}
        return _with_when(spec, self.when)


@dataclass(frozen=True, slots=True)
class IntParam:
    """An integer parameter on the lattice ``low, low + step, ...`` up to ``high``.

    ``high - low`` need not be a multiple of ``step``: the largest value is the last
    lattice point not above ``high`` (``top``).
    """

    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1
    when: Condition = ()

    kind: ClassVar[str] = "int"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"type", "low", "high", "log", "step", "when"})

    def __post_init__(self) -> None:
        name = check_name(self.name)
        low = integer(f"{name}.low", self.low)
        high = integer(f"{name}.high", self.high)
        log = flag(f"{name}.log", self.log)
        step = integer(f"{name}.step", self.step)
        if step < 1:
            raise SpaceError(f"{name}.step", f"must be a positive integer, got {step}")
        if not low < high:
            raise SpaceError(f"{name}.low", f"low must be less than high (low={low}, high={high})")
        if log and low <= 0:
            raise SpaceError(f"{name}.low", f"must be > 0 when log is true, got {low}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)
        _normalize_when(self, name)

    @property
    def count(self) -> int:
        """Number of lattice values."""
        return (self.high - self.low) // self.step + 1

    @property
    def top(self) -> int:
        """The largest lattice value (``<= high``)."""
        return self.low + (self.count - 1) * self.step

    def sample(self, rng: np.random.Generator) -> int:
        """Draw one lattice value: uniform, or log-uniform when ``log``.

        The log case floors a continuous log-uniform draw on ``[low, top + step)`` onto
        the lattice, so every lattice value has probability proportional to the
        log-width of its cell and the median sits near the geometric mean.
        """
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.top + self.step)))
            k = int((x - self.low) // self.step)
        else:
            k = int(rng.integers(0, self.count))
        k = min(max(k, 0), self.count - 1)
        return self.low + k * self.step

    def contains(self, value: Any) -> bool:
        """True for an integer (not bool, not float) on the lattice within the bounds."""
        if not is_int(value):
            return False
        x = int(value)
        return self.low <= x <= self.high and (x - self.low) % self.step == 0

    def grid(self, points: int) -> list[int]:
        """All lattice values if there are at most ``points``, else ``points`` values
        spread evenly (geometrically when ``log``), snapped to the lattice, de-duplicated."""
        check_points(points)
        if self.count <= points:
            return [self.low + k * self.step for k in range(self.count)]
        import numpy as np  # here: importing the parameter types stays light

        if self.log:
            raw = np.geomspace(self.low, self.top, points)
        else:
            raw = np.linspace(self.low, self.top, points)
        ks = [min(max(round((float(x) - self.low) / self.step), 0), self.count - 1) for x in raw]
        return dedupe([self.low + k * self.step for k in ks], self.canonical)

    def canonical(self, value: Any) -> int:
        """Hashable comparison key for a contained value."""
        return int(value)

    def describe(self) -> str:
        """Human-readable domain, for error messages."""
        step = f" with step {self.step}" if self.step != 1 else ""
        scale = ", log scale" if self.log else ""
        return f"an integer in [{self.low}, {self.high}]{step}{scale}"

    def to_dict(self) -> dict[str, Any]:
        """The serialized spec, as users write it under ``space:``."""
        spec = {
            "type": "int",
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "log": self.log,
        }
        return _with_when(spec, self.when)


@dataclass(frozen=True, slots=True)
class CategoricalParam:
    """A parameter that takes one of a fixed, ordered tuple of JSON scalars."""

    name: str
    choices: tuple[Any, ...]
    when: Condition = ()

    kind: ClassVar[str] = "categorical"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"type", "choices", "when"})

    def __post_init__(self) -> None:
        name = check_name(self.name)
        field = f"{name}.choices"
        choices = self.choices
        if not isinstance(choices, (list, tuple)) or not choices:
            raise SpaceError(field, "must be a non-empty list of values")
        seen: set[tuple[str, Any]] = set()
        for i, choice in enumerate(choices):
            key = choice_key(choice)
            if key is None or (isinstance(choice, float) and not math.isfinite(choice)):
                raise SpaceError(
                    field,
                    f"item {i} must be a string, number, boolean or null, got {choice!r}",
                )
            if key in seen:
                raise SpaceError(field, f"item {i} duplicates an earlier choice: {choice!r}")
            seen.add(key)
        object.__setattr__(self, "choices", tuple(choices))
        _normalize_when(self, name)

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one choice uniformly."""
        return self.choices[int(rng.integers(0, len(self.choices)))]

    def contains(self, value: Any) -> bool:
        """True when ``value`` equals a choice (``True`` never matches ``1``)."""
        key = choice_key(value)
        return key is not None and any(choice_key(c) == key for c in self.choices)

    def grid(self, points: int) -> list[Any]:
        """All choices, whatever ``points`` is."""
        check_points(points)
        return list(self.choices)

    def canonical(self, value: Any) -> tuple[str, Any] | None:
        """Hashable comparison key for a contained value."""
        return choice_key(value)

    def describe(self) -> str:
        """Human-readable domain, for error messages."""
        return f"one of {list(self.choices)!r}"

    def to_dict(self) -> dict[str, Any]:
        """The serialized spec, as users write it under ``space:``."""
        return _with_when({"type": "categorical", "choices": list(self.choices)}, self.when)
