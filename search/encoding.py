"""Numeric encodings of a search space, for model-based strategies (``search.bayes``).

Two views of a point, both fixed-length whatever the point's active parameters:

* the *unit cube*: one coordinate in ``[0, 1]`` per free dimension, laid out so that
  a uniform draw reproduces the parameter's own prior (log scale for ``log``, equal
  mass per lattice value or choice). Designs and candidate points are generated here.
* the *features*: scikit-optimize's normalized transform of the same dimensions
  (``normalize_dimensions``: reals and integers to ``[0, 1]``, log-aware; categoricals
  one-hot), which is what the Gaussian process sees.

A dimension with a single possible value (an int lattice of one value, a one-choice
categorical) carries no information and gets no coordinate. Inactive parameters of a
conditional space are *imputed*: their unit coordinate is 0.5 and all their feature
columns are 0, the same constant for every point, so the model can never learn from
whatever value an inactive parameter might have held.

Heavy on purpose (scikit-optimize, hence scipy and scikit-learn): only ``search.bayes``
imports it, where a suggestion is computed, never at import time.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from skopt.space import Categorical, Integer, Real, Space
from skopt.utils import normalize_dimensions

from search.params import CategoricalParam, FloatParam, IntParam
from search.space import Param, SearchSpace

__all__ = ["PointKey", "SpaceEncoder", "encoder_for"]

PointKey = tuple[tuple[str, Any], ...]
#: Trials whose identity and membership an encoder remembers (least recently seen
#: forgotten first): a study's history a few times over, ~1 kB each.
MAX_REMEMBERED = 50_000


def _dimension(param: Param) -> Real | Integer | Categorical | None:
    """The scikit-optimize dimension of ``param``, or None when it has one value."""
    if isinstance(param, FloatParam):
        return Real(param.low, param.high, prior="log-uniform" if param.log else "uniform")
    if isinstance(param, IntParam):
        if param.count == 1:
            return None
        if param.step == 1:
            return Integer(param.low, param.high, prior="log-uniform" if param.log else "uniform")
        if param.log:
            # An index would lose the log scale; values are snapped back onto the lattice.
            return Integer(param.low, param.top, prior="log-uniform")
        return Integer(0, param.count - 1)  # the lattice index
    if len(param.choices) == 1:
        return None
    # Labels, not the choices: choices mix numbers, bools, strings and null, which
    # scikit-optimize's encoders would compare or sort; labels are plain and ordered.
    return Categorical([str(i) for i in range(len(param.choices))])


class SpaceEncoder:
    """Converts between parameter dicts, unit-cube rows and model features.

    Contract: ``decode_unit`` always returns points of the space (``space.contains``),
    holding active parameters only; ``features`` is a pure function of the point's
    active values (inactive parameters never change it).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._dims: list[tuple[int, Param]] = []  # (position in space, param) per coordinate
        dimensions = []
        for i, param in enumerate(space.params):
            dim = _dimension(param)
            if dim is not None:
                self._dims.append((i, param))
                dimensions.append(dim)
        self.n_dims = len(dimensions)
        #: Which unit coordinates are categorical (no notion of "nearby" values).
        self.categorical = np.array([isinstance(p, CategoricalParam) for _, p in self._dims])
        self.skopt_space: Space | None = normalize_dimensions(dimensions) if dimensions else None
        # Feature columns of each coordinate, to blank inactive ones.
        self._columns: list[slice] = []
        start = 0
        for dim in self.skopt_space.dimensions if self.skopt_space else ():
            self._columns.append(slice(start, start + dim.transformed_size))
            start += dim.transformed_size
        self.n_features = start
        # Per parameter: (parent position, allowed choice indices) for each condition.
        position = {name: i for i, name in enumerate(space.names)}
        self._conditions: list[list[tuple[int, np.ndarray]]] = []
        for param in space.params:
            conds = []
            for parent, allowed in param.when:
                owner = space[parent]
                assert isinstance(owner, CategoricalParam)  # the space guarantees it
                keys = {owner.canonical(v) for v in allowed}
                hits = [k for k, c in enumerate(owner.choices) if owner.canonical(c) in keys]
                conds.append((position[parent], np.array(hits, dtype=np.int64)))
            self._conditions.append(conds)
        # canonical choice -> choice index, per categorical coordinate
        self._index: dict[int, dict[Any, int]] = {
            c: {p.canonical(v): k for k, v in enumerate(p.choices)}
            for c, (_, p) in enumerate(self._dims)
            if isinstance(p, CategoricalParam)
        }
        # point_of's memory: id(params) -> (params, point or None)
        self._points: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def columns_of(self, name: str) -> slice:
        """The feature columns of parameter ``name`` (``KeyError`` when it has none)."""
        for c, (_, param) in enumerate(self._dims):
            if param.name == name:
                return self._columns[c]
        raise KeyError(name)

    # --- points -----------------------------------------------------------------

    def point_of(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], PointKey] | None:
        """A copy of ``params`` and its :meth:`key` when they are a point of the space,
        else None; remembered by the identity of ``params``.

        A strategy is rebuilt from the whole history for every ask, and checking and
        keying every trial again cost ~20 us each, 40 ms at 2,000 trials: this keeps
        that cost to the trials not seen before. Histories hand the same mapping
        objects to every rebuild and never change one (they are treated as
        immutable), so its identity stands for its contents; the entry holds the
        mapping, so its identity cannot be reused while remembered."""
        with self._lock:
            hit = self._points.get(id(params))
            if hit is not None and hit[0] is params:
                self._points.move_to_end(id(params))
                return hit[1]
        point = (dict(params), self.key(params)) if self.space.contains(params) else None
        with self._lock:
            self._points[id(params)] = (params, point)
            while len(self._points) > MAX_REMEMBERED:
                self._points.popitem(last=False)
        return point

    def key(self, params: Mapping[str, Any]) -> PointKey:
        """A hashable identity for a point, equal for JSON round trips of it."""
        return tuple(
            (p.name, p.canonical(params[p.name])) for p in self.space.params if p.name in params
        )

    def _constant(self, param: Param) -> Any:
        """The only value of a dimension without a coordinate."""
        if isinstance(param, IntParam):
            return param.low
        if isinstance(param, CategoricalParam):
            return param.choices[0]
        raise TypeError(f"a float parameter always has a coordinate: {param.name}")

    def decode_unit(self, unit: np.ndarray) -> list[dict[str, Any]]:
        """Points for rows of unit-cube coordinates (shape ``(m, n_dims)``)."""
        values, _, active = self._decode_columns(unit)
        names = self.space.names
        live = [
            (names[i], values[i], None if a is None else a.tolist()) for i, a in enumerate(active)
        ]
        return [
            {name: column[r] for name, column, on in live if on is None or on[r]}
            for r in range(len(unit))
        ]

    def unit_features(self, unit: np.ndarray) -> np.ndarray:
        """``features(decode_unit(unit))``, computed column by column without building
        the points: a model-based ask scores thousands of candidates and suggests a
        few, so only those few need to become parameter dicts."""
        values, index, active = self._decode_columns(unit)
        x = np.zeros((len(unit), self.n_features))
        for c, (i, param) in enumerate(self._dims):
            if isinstance(param, CategoricalParam):
                block = self._one_hot(index[i], len(param.choices))
            else:
                block = self._numeric_block(c, param, np.array(values[i], dtype=float))
            on = active[i]
            if on is not None:
                block[~on] = 0.0
            x[:, self._columns[c]] = block
        return x

    def _decode_columns(
        self, unit: np.ndarray
    ) -> tuple[list[list[Any]], list[np.ndarray], list[np.ndarray | None]]:
        """Per parameter of the space: its decoded values for rows of ``unit``, their
        choice or lattice indices, and where it is active (None: everywhere)."""
        unit = np.clip(np.asarray(unit, dtype=float), 0.0, 1.0)
        m = unit.shape[0]
        values: list[list[Any]] = []
        choice: list[np.ndarray] = []  # choice indices (categoricals; zeros otherwise)
        active: list[np.ndarray | None] = []  # None: always active
        coordinate = {i: c for c, (i, _) in enumerate(self._dims)}
        # Column by column, vectorized: decoding thousands of candidates per ask.
        for i, param in enumerate(self.space.params):
            if i in coordinate:
                column, index = self._from_unit(param, unit[:, coordinate[i]])
            else:
                column, index = [self._constant(param)] * m, np.zeros(m, dtype=np.int64)
            values.append(column)
            choice.append(index)
            mask: np.ndarray | None = None
            for parent, allowed in self._conditions[i]:
                # Parents come first, so their activity is known already.
                ok = np.isin(choice[parent], allowed)
                parent_active = active[parent]
                if parent_active is not None:
                    ok &= parent_active
                mask = ok if mask is None else mask & ok
            active.append(mask)
        return values, choice, active

    def encode_unit(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Unit-cube rows of points (inactive coordinates at 0.5), shape ``(m, n_dims)``."""
        out = np.full((len(points), self.n_dims), 0.5)
        for r, params in enumerate(points):
            for c, (_, param) in enumerate(self._dims):
                if param.name in params:
                    out[r, c] = self._to_unit(param, params[param.name])
        return out

    def features(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Model features of points, shape ``(m, n_features)``; inactive columns are 0."""
        x = np.zeros((len(points), self.n_features))
        if self.skopt_space is None or not points:
            return x
        if self.space.conditional:
            # Read active values only, even from a mapping that holds more.
            points = [self.space.project(p) for p in points]
        # Column by column: scikit-optimize transforms one dimension at a time anyway,
        # and a column is one vectorized call instead of m small ones.
        for c, (_, param) in enumerate(self._dims):
            present = np.array([param.name in params for params in points])
            if isinstance(param, CategoricalParam):
                lookup = self._index[c]
                index = np.array(
                    [
                        lookup[param.canonical(p[param.name])] if param.name in p else 0
                        for p in points
                    ],
                    dtype=np.int64,
                )
                block = self._one_hot(index, len(param.choices))
            else:
                raw = np.array([p.get(param.name, param.low) for p in points], dtype=float)
                block = self._numeric_block(c, param, raw)
            block[~present] = 0.0
            x[:, self._columns[c]] = block
        return x

    @staticmethod
    def _one_hot(index: np.ndarray, k: int) -> np.ndarray:
        """Choice indices one-hot, laid out as scikit-optimize's "onehot" transform (a
        single 0/1 column for two choices): by hand, because its encoder validates
        every call through scikit-learn and costs milliseconds per column."""
        return index[:, None].astype(float) if k == 2 else np.eye(k)[index]

    def _numeric_block(self, c: int, param: Param, raw: np.ndarray) -> np.ndarray:
        """Feature column of coordinate ``c`` (a float or int parameter) for values ``raw``."""
        assert self.skopt_space is not None  # a coordinate exists
        if isinstance(param, IntParam) and param.step > 1 and not param.log:
            raw = np.floor((raw - param.low) / param.step)  # the lattice index
        dim = self.skopt_space.dimensions[c]
        return np.asarray(dim.transform(raw), dtype=float).reshape(len(raw), -1)

    # --- one dimension --------------------------------------------------------------

    @staticmethod
    def _from_unit(param: Param, u: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """Plain Python values for unit coordinates ``u`` (the inverse CDF of the prior),
        and their choice or lattice indices."""
        if isinstance(param, FloatParam):
            if param.log:
                lo, hi = math.log(param.low), math.log(param.high)
                x = np.exp(lo + u * (hi - lo))
            else:
                x = param.low + u * (param.high - param.low)
            return np.clip(x, param.low, param.high).tolist(), np.zeros(len(u), dtype=np.int64)
        if isinstance(param, IntParam):
            if param.log:
                lo, hi = math.log(param.low), math.log(param.top + param.step)
                k = np.floor((np.exp(lo + u * (hi - lo)) - param.low) / param.step)
            else:
                k = np.floor(u * param.count)
            k = np.clip(k, 0, param.count - 1).astype(np.int64)
            return (param.low + k * param.step).tolist(), k
        assert isinstance(param, CategoricalParam)
        k = np.clip(np.floor(u * len(param.choices)), 0, len(param.choices) - 1).astype(np.int64)
        return [param.choices[v] for v in k.tolist()], k

    @staticmethod
    def _to_unit(param: Param, value: Any) -> float:
        """The unit coordinate of a contained value (a cell's middle for discrete ones)."""
        if isinstance(param, FloatParam):
            if param.log:
                lo, hi = math.log(param.low), math.log(param.high)
                return (math.log(value) - lo) / (hi - lo)
            return (float(value) - param.low) / (param.high - param.low)
        if isinstance(param, IntParam):
            if param.log:
                lo, hi = math.log(param.low), math.log(param.top + param.step)
                return (0.5 * (math.log(value) + math.log(value + param.step)) - lo) / (hi - lo)
            return ((int(value) - param.low) // param.step + 0.5) / param.count
        key = param.canonical(value)
        k = next(i for i, c in enumerate(param.choices) if param.canonical(c) == key)
        return (k + 0.5) / len(param.choices)


@functools.lru_cache(maxsize=64)
def encoder_for(space: SearchSpace) -> SpaceEncoder:
    """The encoder of ``space``, built once per (equal) space: a strategy is rebuilt
    for every ask, and building one (scikit-optimize's dimensions with their frozen
    scipy distributions) cost ~10 ms, as much as the rest of a warm ask's set-up. An
    encoder's answers depend on its space alone (what it remembers of points only
    saves work), so sharing one changes nothing else."""
    return SpaceEncoder(space)
