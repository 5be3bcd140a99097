"""Grid search over the cartesian product of every parameter's grid values.

The grid is never materialized: a point is an integer index decoded in mixed radix
(one digit per parameter, the first parameter most significant), so a grid of up
to ``MAX_GRID_POINTS`` costs a few arrays of that many integers, not that many dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search.base import OptionError, Strategy, Suggestion
from search.space import Param, SpaceError

__all__ = ["DEFAULT_POINTS", "MAX_AXIS_POINTS", "MAX_GRID_POINTS", "GridStrategy"]

MAX_GRID_POINTS = 1_000_000
#: Values per axis: enough for any sensible grid, small enough that building the axes
#: stays cheap (a grid is rebuilt from history on every scheduling pass).
MAX_AXIS_POINTS = 1_000
DEFAULT_POINTS = 5


def _axis_bound(param: Param, points: int) -> int:
    """Upper bound of ``len(param.grid(points))`` without building it."""
    if param.kind == "categorical":
        return len(param.choices)  # type: ignore[union-attr]
    if param.kind == "int":
        return min(param.count, points)  # type: ignore[union-attr]
    return points


def _format_size(size: int) -> str:
    # Products over thousands of parameters have thousands of digits; say roughly.
    if size < 10**15:
        return f"{size:,}"
    return f"about 10^{len(str(size)) - 1}"


class GridStrategy(Strategy):
    """Visit every grid point exactly once, then report exhaustion.

    Options: ``points`` (int, 2..MAX_AXIS_POINTS, default 5): how many values a
    float dimension, or an int dimension with more lattice values than that,
    contributes; ``shuffle`` (bool, default True): visit points in an order
    permuted by ``seed`` rather than in index order.

    A point counts as visited when any history trial, whatever its status, has
    exactly its parameters (floats compared to 12 significant digits); trials
    off the grid or outside the space are ignored. One instance also remembers
    what it has suggested, so repeated ``ask`` calls never repeat a point.
    ``Suggestion.info`` is ``{"grid_index": index}``.

    Raises ``SpaceError`` (field ``"space"``) when the grid has more than
    ``MAX_GRID_POINTS`` points.
    """

    name = "grid"

    def _setup(self) -> None:
        points: int = self.options["points"]
        self._axes = self._build_axes(points)
        self._size = 1
        for axis in self._axes:
            self._size *= len(axis)
        # strides[i] = number of points per step of parameter i's digit.
        self._strides = [1] * len(self._axes)
        for i in range(len(self._axes) - 2, -1, -1):
            self._strides[i] = self._strides[i + 1] * len(self._axes[i + 1])
        self._positions = [
            {p.canonical(v): k for k, v in enumerate(axis)}
            for p, axis in zip(self.space.params, self._axes, strict=True)
        ]

        visited = np.zeros(self._size, dtype=bool)
        for trial in self.history:
            index = self.index_of(trial.params)
            if index is not None:
                visited[index] = True
        if self.options["shuffle"]:
            order = np.random.default_rng(self.seed).permutation(self._size)
        else:
            order = np.arange(self._size)
        self._queue = order[~visited[order]]
        self._cursor = 0

    def _build_axes(self, points: int) -> list[list[Any]]:
        axes: list[list[Any]] = []
        size = 1
        for i, param in enumerate(self.space.params):
            axis = param.grid(points)
            axes.append(axis)
            size *= len(axis)
            if size > MAX_GRID_POINTS:
                # Estimate the rest instead of building possibly huge axes for nothing.
                for other in self.space.params[i + 1 :]:
                    size *= _axis_bound(other, points)
                raise SpaceError(
                    "space",
                    f"the grid has {_format_size(size)} points, more than the limit of "
                    f"{MAX_GRID_POINTS:,}; lower options.points, narrow the space or use "
                    "another strategy (e.g. random)",
                )
        return axes

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return ``{"points": int, "shuffle": bool}`` with defaults filled in."""
        given = cls._check_option_keys(options, ("points", "shuffle"))
        points = given.get("points", DEFAULT_POINTS)
        if isinstance(points, bool) or not isinstance(points, int):
            raise OptionError("options.points", f"must be an integer, got {points!r}")
        if not 2 <= points <= MAX_AXIS_POINTS:
            raise OptionError(
                "options.points", f"must be between 2 and {MAX_AXIS_POINTS:,}, got {points}"
            )
        shuffle = given.get("shuffle", True)
        if not isinstance(shuffle, bool):
            raise OptionError("options.shuffle", f"must be true or false, got {shuffle!r}")
        return {"points": points, "shuffle": shuffle}

    @property
    def size(self) -> int:
        """Number of grid points."""
        return self._size

    @property
    def capacity(self) -> int:
        """The grid size: each point is suggested at most once."""
        return self._size

    @property
    def exhausted(self) -> bool:
        """True when every point is in the history or was suggested by this instance."""
        return self._cursor >= len(self._queue)

    def point(self, index: int) -> dict[str, Any]:
        """The parameters of grid point ``index`` (``0 <= index < size``)."""
        if not 0 <= index < self._size:
            raise IndexError(f"grid index {index} out of range 0..{self._size - 1}")
        params: dict[str, Any] = {}
        for param, axis, stride in zip(self.space.params, self._axes, self._strides, strict=True):
            digit, index = divmod(index, stride)
            params[param.name] = axis[digit]
        return params

    def index_of(self, params: Mapping[str, Any]) -> int | None:
        """The grid index of ``params``, or None when they are not a grid point."""
        if not isinstance(params, Mapping) or len(params) != len(self.space):
            return None
        index = 0
        for param, positions, stride in zip(
            self.space.params, self._positions, self._strides, strict=True
        ):
            if param.name not in params or not param.contains(params[param.name]):
                return None
            digit = positions.get(param.canonical(params[param.name]))
            if digit is None:
                return None
            index += digit * stride
        return index

    def ask(self, n: int) -> list[Suggestion]:
        """The next ``n`` unvisited grid points (fewer when the grid runs out)."""
        self._check_n(n)
        chosen = self._queue[self._cursor : self._cursor + n]
        self._cursor += len(chosen)
        return [Suggestion(params=self.point(int(i)), info={"grid_index": int(i)}) for i in chosen]
