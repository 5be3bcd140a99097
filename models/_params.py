"""Coercion and validation of trial parameters, shared by the model builders and training.

A trial's parameters arrive as a plain mapping that has travelled through JSON, a database
and a search strategy, so an integer may come back as ``128.0`` and a boolean choice as
``"true"``. These helpers accept every harmless spelling of a value and reject everything
else with a ``ValueError`` whose message starts with the parameter's name
(``"units: expected an integer, got 1.5"``), which the worker forwards to the user as the
trial's failure reason.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ParamReader",
    "UnknownNameError",
    "as_bool",
    "as_choice",
    "as_float",
    "as_int",
    "require",
]


class UnknownNameError(KeyError):
    """A lookup of a name that no registry entry has; the message lists the known names.

    Like ``search``'s registry errors it names the spec ``field`` the name came from
    (``"train.model"``), and ``message`` says what is wrong. Subclasses ``KeyError`` so
    ``except KeyError`` callers keep working, but overrides ``__str__``: a bare
    ``KeyError`` renders its message with quotes around it.
    """

    def __init__(self, kind: str, name: object, known: Iterable[str], *, field: str) -> None:
        self.name = name
        self.field = field
        self.known = sorted(known)
        self.message = f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def require(condition: bool, name: str, message: str) -> None:
    """Raise ``ValueError("<name>: <message>")`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(f"{name}: {message}")


def as_int(name: str, value: Any) -> int:
    """``value`` as an ``int``; integral floats (``128.0``) pass, ``1.5`` and bools do not.

    Bools are refused because ``True`` silently meaning ``1`` hides spec mistakes.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(float(value))
    raise ValueError(f"{name}: expected an integer, got {value!r}")


def as_float(name: str, value: Any) -> float:
    """``value`` as a finite ``float``; bools, strings, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return result


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def as_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool``: bools (numpy's too), the integers 0/1 and the usual strings.

    Categorical choices are often written ``[true, false]`` in YAML but may come back as
    strings or 0/1 after a round trip, so those spellings are accepted; anything else
    (``2``, ``"maybe"``) is an error rather than a guess.
    """
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy.bool_ without importing numpy here
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(int(value))
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"{name}: expected a boolean, got {value!r}")


def as_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` as one of ``choices`` (case-insensitive, surrounding spaces ignored)."""
    known = sorted(choices)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in known:
            return lowered
    raise ValueError(f"{name}: unknown {value!r}; known: {', '.join(known)}")


class ParamReader:
    """Reads a model's parameters from a trial's parameter dict: each one from
    ``params`` or else ``defaults``, coerced and range-checked, a bad value raising
    ``ValueError`` naming it (the helpers above). Other keys of ``params`` are ignored,
    so a whole trial dict can be passed."""

    def __init__(self, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self._params = params
        self._defaults = defaults

    def _get(self, key: str) -> Any:
        return self._params.get(key, self._defaults[key])

    def int_at_least(self, key: str, low: int) -> int:
        value = as_int(key, self._get(key))
        require(value >= low, key, f"must be >= {low}, got {value}")
        return value

    def fraction(self, key: str) -> float:
        """A float in [0, 1) (a dropout rate)."""
        value = as_float(key, self._get(key))
        require(0.0 <= value < 1.0, key, f"must be in [0, 1), got {value}")
        return value

    def flag(self, key: str) -> bool:
        return as_bool(key, self._get(key))

    def choice(self, key: str, choices: Iterable[str]) -> str:
        return as_choice(key, self._get(key), choices)

    def one_of(self, key: str, allowed: Iterable[int]) -> int:
        """An integer among ``allowed``."""
        value = as_int(key, self._get(key))
        options = tuple(allowed)
        require(
            value in options, key, f"must be one of {', '.join(map(str, options))}, got {value}"
        )
        return value
