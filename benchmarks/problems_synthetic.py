"""Synthetic problems for the search-quality benchmark: standard test functions of 2 to
20 dimensions, smooth, multimodal and ill-conditioned, plus mixed (integer and
categorical) and conditional spaces built from them.

Each function takes one numpy vector and returns a float; :func:`box_problem` turns one
into a :class:`benchmarks.problems.Problem` over a box of float parameters ``x1..xd``.
Domains are the customary ones, made asymmetric where the optimum would sit at the
centre (Ackley, Rastrigin), so a design that starts at the centre gains nothing. Known
minima are the functions' own (Hartmann, Michalewicz at d=5, Styblinski-Tang and the
others at their stated points).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmarks.problem import Problem
from search import SearchSpace

__all__ = ["SYNTHETIC", "box_problem", "conditional_problem", "mixed_problem"]

Vector = Callable[[np.ndarray], float]


def ackley(x: np.ndarray) -> float:
    d = len(x)
    a = -20.0 * math.exp(-0.2 * math.sqrt(float(np.sum(x**2)) / d))
    return a - math.exp(float(np.sum(np.cos(2 * math.pi * x))) / d) + 20.0 + math.e


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def levy(x: np.ndarray) -> float:
    w = 1.0 + (x - 1.0) / 4.0
    head = math.sin(math.pi * w[0]) ** 2
    body = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + body + tail)


def styblinski_tang(x: np.ndarray) -> float:
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


def rastrigin(x: np.ndarray) -> float:
    return float(10 * len(x) + np.sum(x**2 - 10 * np.cos(2 * math.pi * x)))


def michalewicz(x: np.ndarray) -> float:
    i = np.arange(1, len(x) + 1)
    return float(-np.sum(np.sin(x) * np.sin(i * x**2 / math.pi) ** 20))


def six_hump_camel(x: np.ndarray) -> float:
    a, b = float(x[0]), float(x[1])
    return (4 - 2.1 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


@functools.cache
def _rotation(d: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed rotation and centre for the rotated ellipsoid (seeded by ``d`` alone)."""
    rng = np.random.default_rng(1000 + d)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r)), rng.uniform(-3.0, 3.0, d)


def rotated_ellipsoid(x: np.ndarray) -> float:
    """Condition number 1e6 along rotated axes: no coordinate is separable."""
    q, centre = _rotation(len(x))
    z = q @ (x - centre)
    weights = 10.0 ** (6.0 * np.arange(len(x)) / max(len(x) - 1, 1))
    return float(np.sum(weights * z**2))


def box_problem(
    name: str,
    fn: Vector,
    bounds: list[tuple[float, float]],
    optimum: float,
    description: str,
    suite: str,
) -> Problem:
    """``fn`` over float parameters ``x1..xd`` with these bounds."""
    space = SearchSpace.from_dict(
        {f"x{i}": {"type": "float", "low": lo, "high": hi} for i, (lo, hi) in enumerate(bounds, 1)}
    )
    names = space.names

    def objective(params: Mapping[str, Any]) -> float:
        return fn(np.array([float(params[n]) for n in names]))

    return Problem(name, space, objective, optimum, 10_000, description, suite)


# A categorical "variant" moves the optimum and adds an offset, as a choice of optimizer
# or activation does: the best variant is "a" (offset 0).
_VARIANT_SHIFT = {"a": 0.0, "b": 2.5, "c": -3.0, "d": 5.0}
_VARIANT_OFFSET = {"a": 0.0, "b": 0.4, "c": 0.9, "d": 1.6}


def mixed_problem(name: str, fn: Vector, floats: int, ints: int, suite: str) -> Problem:
    """``fn`` (minimum 0 at 1 on [-10, 10]^d, as Levy) over ``floats`` float and
    ``ints`` integer parameters in [-10, 10], and a categorical ``variant``."""
    spec: dict[str, Any] = {
        f"x{i}": {"type": "float", "low": -10.0, "high": 10.0} for i in range(1, floats + 1)
    }
    spec |= {f"n{i}": {"type": "int", "low": -10, "high": 10} for i in range(1, ints + 1)}
    spec["variant"] = {"type": "categorical", "choices": list(_VARIANT_SHIFT)}
    space = SearchSpace.from_dict(spec)
    keys = [k for k in spec if k != "variant"]

    def objective(params: Mapping[str, Any]) -> float:
        x = np.array([float(params[k]) for k in keys])
        x[0] -= _VARIANT_SHIFT[params["variant"]]
        return fn(x) + _VARIANT_OFFSET[params["variant"]]

    d = floats + ints
    return Problem(
        name,
        space,
        objective,
        0.0,
        10_000,
        f"{fn.__name__}, {floats} float + {ints} int + 1 categorical (4 choices), {d + 1}-D",
        suite,
    )


def conditional_problem(suite: str) -> Problem:
    """A categorical ``family`` picks which parameters exist, with a shared log-scale
    ``lr``: ``bowl`` (2 floats, best 0.3 above the optimum), ``hart`` (Hartmann-3,
    shifted to a best of 0.15) and ``valley`` (a scaled 2-D Rosenbrock, best 0), plus
    ``(log10 lr + 2.5)^2 / 4``. Minimum 0: family valley, lr = 10^-2.5."""
    spec: dict[str, Any] = {
        "family": {"type": "categorical", "choices": ["bowl", "hart", "valley"]},
        "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
        "bowl_u": {"type": "float", "low": 0.0, "high": 1.0, "when": {"family": "bowl"}},
        "bowl_v": {"type": "float", "low": 0.0, "high": 1.0, "when": {"family": "bowl"}},
        "valley_p": {"type": "float", "low": -2.0, "high": 2.0, "when": {"family": "valley"}},
        "valley_q": {"type": "float", "low": -1.0, "high": 3.0, "when": {"family": "valley"}},
    }
    spec |= {
        f"hart_{i}": {"type": "float", "low": 0.0, "high": 1.0, "when": {"family": "hart"}}
        for i in range(1, 4)
    }
    space = SearchSpace.from_dict(spec)

    def objective(params: Mapping[str, Any]) -> float:
        shared = (math.log10(float(params["lr"])) + 2.5) ** 2 / 4
        family = params["family"]
        if family == "bowl":
            u, v = float(params["bowl_u"]), float(params["bowl_v"])
            return shared + 0.3 + 4 * ((u - 0.7) ** 2 + (v - 0.2) ** 2)
        if family == "hart":
            x = np.array([float(params[f"hart_{i}"]) for i in range(1, 4)])
            return shared + 0.15 + (hartmann3(x) + 3.86278) / 2
        return (
            shared
            + rosenbrock(np.array([float(params["valley_p"]), float(params["valley_q"])])) / 50
        )

    return Problem(
        "conditional",
        space,
        objective,
        0.0,
        10_000,
        "conditional: 3 families of 2-3 parameters + shared lr",
        suite,
    )


#: Box problems: name -> (function, dimensions, low, high, known minimum, description,
#: suite). Suite "tune" was looked at while developing the strategies, "holdout" only
#: for the figures of a finished change.
_BOXES: dict[str, tuple[Vector, int, float, float, float, str, str]] = {
    "hartmann3": (hartmann3, 3, 0, 1, -3.86278, "Hartmann, 3-D", "holdout"),
    "rosenbrock4": (rosenbrock, 4, -5, 10, 0.0, "Rosenbrock, 4-D (curved valley)", "tune"),
    "ackley5": (ackley, 5, -12, 20, 0.0, "Ackley, 5-D (multimodal)", "tune"),
    "michalewicz5": (
        michalewicz,
        5,
        0,
        math.pi,
        -4.687658,
        "Michalewicz, 5-D (steep ridges)",
        "holdout",
    ),
    "rastrigin6": (rastrigin, 6, -4, 5.12, 0.0, "Rastrigin, 6-D (many local minima)", "holdout"),
    "levy8": (levy, 8, -10, 10, 0.0, "Levy, 8-D (multimodal)", "holdout"),
    "styblinski10": (
        styblinski_tang,
        10,
        -5,
        5,
        -39.1661657 * 10,
        "Styblinski-Tang, 10-D",
        "holdout",
    ),
    "ackley10": (ackley, 10, -12, 20, 0.0, "Ackley, 10-D", "holdout"),
    "ellipsoid20": (
        rotated_ellipsoid,
        20,
        -5,
        5,
        0.0,
        "rotated ellipsoid, 20-D, condition 1e6",
        "holdout",
    ),
}


def _box(name: str) -> Problem:
    fn, d, lo, hi, optimum, text, suite = _BOXES[name]
    return box_problem(name, fn, [(lo, hi)] * d, optimum, text, suite)


# name -> builder, every problem of this module (suites as in ``_BOXES``).
SYNTHETIC: dict[str, Callable[[], Problem]] = {
    "camel": lambda: box_problem(
        "camel", six_hump_camel, [(-3, 3), (-2, 2)], -1.0316285, "six-hump camel, 2-D", "holdout"
    ),
    **{name: functools.partial(_box, name) for name in _BOXES},
    "mixed_levy": lambda: mixed_problem("mixed_levy", levy, 3, 2, "tune"),
    "mixed_ackley": lambda: mixed_problem("mixed_ackley", _ackley_at_one, 4, 3, "holdout"),
    "conditional": lambda: conditional_problem("holdout"),
}


def _ackley_at_one(x: np.ndarray) -> float:
    """Ackley moved so its minimum is at 1, like Levy's (``mixed_problem``'s contract)."""
    return ackley(x - 1.0)
