"""Value checks shared by the parameter classes.

Each ``check``-style function returns the normalized value or raises ``SpaceError``
naming ``field``; the predicates never raise. Kept apart from ``search.params`` so
that file holds only the parameter types.

NumPy scalars (``np.int64``, ``np.float32``, ``np.bool_``) are numbers and bools like
Python's, but this module does not import NumPy: its types are looked up in
``sys.modules`` only, since no NumPy value can exist before NumPy is loaded. The spec and
the client import these checks and stay light (NumPy costs more than the rest of them).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any, TypeGuard

from search.errors import OptionError, SpaceError

__all__ = [
    "FLOAT_KEY_DIGITS",
    "MAX_INT_MAGNITUDE",
    "NAME_PATTERN",
    "check_name",
    "check_points",
    "check_when",
    "choice_key",
    "dedupe",
    "finite_float",
    "flag",
    "integer",
    "is_finite_number",
    "is_int",
    "is_number",
    "show_value",
]

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Integers beyond 2**53 cannot travel through JSON (JavaScript clients, float-typed
# columns) without losing precision, so they cannot be bounds either.
MAX_INT_MAGNITUDE = 2**53
# Floats are compared after rounding to this many significant digits, which absorbs
# the last-bit noise of serialization round trips without merging real grid values.
FLOAT_KEY_DIGITS = 12


def _is_bool(value: object) -> bool:
    """A Python or NumPy bool."""
    if isinstance(value, bool):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.bool_)


def _is_float(value: object) -> TypeGuard[float]:
    """A Python or NumPy float (``np.float32`` is no ``float``, but converts like one)."""
    if isinstance(value, float):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.floating)


def is_number(value: object) -> TypeGuard[float]:
    """True for real numbers (NumPy's too); False for bools, which Python treats as ints."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, (np.integer, np.floating))


def is_int(value: object) -> bool:
    """True for an integer (Python's or NumPy's); False for bools and floats, even 2.0."""
    return is_number(value) and not _is_float(value)


def is_finite_number(value: object) -> TypeGuard[float]:
    """True for a real number that is neither NaN nor infinite (bools are not numbers):
    the one test of "a usable objective value" every room shares."""
    return is_number(value) and math.isfinite(value)


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid parameter name, else raise ``SpaceError``.

    The field is the name itself, or ``"space"`` when there is no usable name.
    """
    if not isinstance(name, str) or not name:
        raise SpaceError("space", f"parameter names must be non-empty strings, got {name!r}")
    if NAME_PATTERN.fullmatch(name) is None:
        raise SpaceError(
            name,
            "invalid parameter name: use letters, digits, '_', '.' or '-', "
            "starting with a letter or '_'",
        )
    return name


def finite_float(field: str, value: object) -> float:
    """``value`` as a finite float; bools, strings, NaN and infinities are refused."""
    if not is_number(value):
        raise SpaceError(field, f"must be a number, got {value!r}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise SpaceError(field, f"must be a finite number, got {value!r}")
    return result


def integer(field: str, value: object) -> int:
    """``value`` as an int within ±2**53; integral floats pass, bools do not."""
    # 2.0 is accepted as 2 because YAML and JSON writers often emit integral floats.
    if is_number(value) and _is_float(value):
        if not math.isfinite(value) or not float(value).is_integer():
            raise SpaceError(field, f"must be an integer, got {value!r}")
        value = int(value)
    if not is_number(value):
        raise SpaceError(field, f"must be an integer, got {value!r}")
    result = int(value)
    if abs(result) > MAX_INT_MAGNITUDE:
        raise SpaceError(field, f"must be within ±2**53, got {result}")
    return result


def flag(field: str, value: object) -> bool:
    """``value`` itself if it is a real bool (YAML's ``"true"`` string is not)."""
    if not isinstance(value, bool):
        raise SpaceError(field, f"must be true or false, got {value!r}")
    return value


def check_points(points: int) -> None:
    """Guard ``grid(points)``: a programming error, hence ``ValueError``, not ``SpaceError``."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")


def dedupe(values: list[Any], key: Any) -> list[Any]:
    """Keep the first value of each canonical key, preserving order."""
    seen: set[Any] = set()
    out = []
    for value in values:
        k = key(value)
        if k not in seen:
            seen.add(k)
            out.append(value)
    return out


def choice_key(value: Any) -> tuple[str, Any] | None:
    """Equality key for categorical values; None when ``value`` is not a JSON scalar.

    Bools get their own tag because ``True == 1`` in Python, and a choice list such
    as ``[1, True]`` means two different things.
    """
    if value is None:
        return ("none", None)
    if _is_bool(value):
        return ("bool", bool(value))
    if isinstance(value, str):
        return ("str", str(value))
    if is_number(value):
        number = float(value) if _is_float(value) else int(value)
        return ("num", number)
    return None


def show_value(value: Any) -> str:
    """A value as users wrote it in YAML/JSON (``cnn``, ``true``, ``null``, ``3``), for messages."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if _is_bool(value):
        return "true" if value else "false"
    return repr(value)


def check_when(name: str, when: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Normalize a parameter's ``when`` condition, or raise ``SpaceError``.

    Accepts the serialized mapping ``{parent: [values]}`` (a scalar is shorthand for a
    one-item list) or the stored form, a sequence of ``(parent, values)`` pairs.
    Returns pairs sorted by parent name, so that two spellings of one condition compare
    and hash equal. Only the shape is checked here; whether each parent exists, is a
    categorical declared earlier and has those choices is the space's job, since a
    parameter alone does not know its siblings.

    Fields: ``"<name>.when"`` for the shape and parent names, ``"<name>.when.<parent>"``
    for the allowed values.
    """
    field = f"{name}.when"
    if isinstance(when, Mapping):
        items = list(when.items())
    elif isinstance(when, (list, tuple)) and all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in when
    ):
        items = [tuple(item) for item in when]
    else:
        raise SpaceError(field, "must be a mapping of parent parameter name to allowed values")
    if not items:
        # An empty condition would read as "always active" while looking conditional.
        raise SpaceError(field, "must name at least one parent parameter")
    pairs: dict[str, tuple[Any, ...]] = {}
    for parent, allowed in items:
        if not isinstance(parent, str) or NAME_PATTERN.fullmatch(parent) is None:
            raise SpaceError(field, f"parent must be a parameter name, got {parent!r}")
        if parent in pairs:
            raise SpaceError(f"{field}.{parent}", "parent named twice")
        values = tuple(allowed) if isinstance(allowed, (list, tuple)) else (allowed,)
        if not values:
            raise SpaceError(f"{field}.{parent}", "must list at least one allowed value")
        seen: set[tuple[str, Any]] = set()
        for value in values:
            key = choice_key(value)
            if key is None:
                raise SpaceError(
                    f"{field}.{parent}",
                    f"allowed values must be strings, numbers, booleans or null, got {value!r}",
                )
            if key in seen:
                raise SpaceError(f"{field}.{parent}", f"value listed twice: {value!r}")
            seen.add(key)
        pairs[parent] = values
    return tuple(sorted(pairs.items()))


def option_int(key: str, value: object, low: int, high: int | None = None) -> int:
    """A strategy option that must be an integer in ``[low, high]`` (``high`` None:
    unbounded); ``OptionError("options.<key>")`` otherwise."""
    span = f"in [{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"options.{key}", f"must be an integer {span}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise OptionError(f"options.{key}", f"must be an integer {span}, got {value}")
    return value


def option_number(
    key: str, value: object, low: float, high: float, *, open_low: bool = False
) -> float:
    """A strategy option that must be a finite number in ``[low, high]`` (``(low,
    high]`` with ``open_low``); ``OptionError("options.<key>")`` otherwise."""
    if is_finite_number(value) and (low < value if open_low else low <= value) and value <= high:
        return float(value)
    bracket = "(" if open_low else "["
    raise OptionError(
        f"options.{key}", f"must be a number in {bracket}{low}, {high}], got {value!r}"
    )
