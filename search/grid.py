"""Grid search over the cartesian product of every parameter's grid values.

The grid is never materialized: a point is an integer index decoded in mixed radix
(one digit per parameter, the first parameter most significant), so a grid of up
to ``MAX_GRID_POINTS`` costs a few arrays of that many integers, not that many dicts.

Conditional spaces: projecting the full product onto each point's active parameters
would produce each distinct point many times (every value of an inactive parameter
gives the same projection). Instead the grid is the union of *branches*: one branch
per distinct assignment of the conditions' parent parameters (an inactive parent
counts as one more "absent" value), holding the product of the axes of the other
parameters active in it. Branches are numbered depth-first in declaration order and
their points laid end to end, so every distinct point has exactly one index, the size
is exact without enumerating points, and the limit applies to distinct points only.
An unconditional space is a single branch: the classic mixed radix, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.base import OptionError, Strategy, Suggestion
from search.checks import choice_key
from search.params import CategoricalParam, IntParam
from search.space import Param, SpaceError

__all__ = [
    "DEFAULT_POINTS",
    "MAX_AXIS_POINTS",
    "MAX_GRID_BRANCHES",
    "MAX_GRID_POINTS",
    "GridStrategy",
]

MAX_GRID_POINTS = 1_000_000
#: Branches of a conditional grid (distinct assignments of the parent parameters). Each
#: costs a little bookkeeping on every rebuild; real spaces have a handful.
MAX_GRID_BRANCHES = 10_000
#: Values per axis: enough for any sensible grid, small enough that building the axes
#: stays cheap (a grid is rebuilt from history on every scheduling pass).
MAX_AXIS_POINTS = 1_000
DEFAULT_POINTS = 5


def _axis_bound(param: Param, points: int) -> int:
    """Upper bound of ``len(param.grid(points))`` without building it."""
    if isinstance(param, CategoricalParam):
        return len(param.choices)
    if isinstance(param, IntParam):
        return min(param.count, points)
    return points


def _too_large(size: str) -> SpaceError:
    return SpaceError(
        "space",
        f"the grid has {size} points, more than the limit of {MAX_GRID_POINTS:,}; lower "
        "options.points, narrow the space or use another strategy (e.g. random)",
    )


@dataclass(frozen=True)
class _Branch:
    """One assignment of the parent parameters and the product of the rest.

    ``fixed`` maps a parent's parameter index to its axis position (active parents
    only); ``free`` lists the other active parameters (indices, declaration order)
    whose axes form the branch's mixed radix, with ``strides``; ``offset`` is the
    index of the branch's first point.
    """

    fixed: dict[int, int]
    free: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int
    size: int


def _positions(axis: list[Any], allowed: tuple[Any, ...]) -> set[int]:
    """Positions on a categorical axis of the allowed values (by ``choice_key``, so
    ``True`` never matches ``1``)."""
    keys = {choice_key(v) for v in allowed}
    return {k for k, c in enumerate(axis) if choice_key(c) in keys}


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

    In a conditional space a point holds only its active parameters and each
    distinct point is one index (see the module docstring); unshuffled order is
    then branch by branch, the parents' values varying slowest.

    Raises ``SpaceError`` (field ``"space"``) when the grid has more than
    ``MAX_GRID_POINTS`` distinct points, or more than ``MAX_GRID_BRANCHES`` branches.
    """

    name = "grid"

    def _setup(self) -> None:
        points: int = self.options["points"]
        self._axes = self._build_axes(points)
        self._positions = [
            {p.canonical(v): k for k, v in enumerate(axis)}
            for p, axis in zip(self.space.params, self._axes, strict=True)
        ]
        self._parents = self._parent_indices()
        self._branches = self._build_branches()
        self._by_key = {self._branch_key(b.fixed): b for b in self._branches}
        self._offsets = np.array([b.offset for b in self._branches], dtype=np.int64)
        last = self._branches[-1]
        self._size = last.offset + last.size

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
            if size > MAX_GRID_POINTS and not self.space.conditional:
                # Estimate the rest instead of building possibly huge axes for nothing.
                # (A conditional space's full product overstates its distinct points,
                # so there the branches decide.)
                for other in self.space.params[i + 1 :]:
                    size *= _axis_bound(other, points)
                raise _too_large(_format_size(size))
        return axes

    def _parent_indices(self) -> tuple[int, ...]:
        """Indices of the parameters some condition reads, in declaration order."""
        names = {parent for p in self.space.params for parent, _ in p.when}
        return tuple(i for i, p in enumerate(self.space.params) if p.name in names)

    def _build_branches(self) -> list[_Branch]:
        """Enumerate parent assignments depth-first; each becomes one branch."""
        params = self.space.params
        parents = set(self._parents)
        branches: list[_Branch] = []
        offset = 0
        # An active parent is exactly one present in ``fixed`` (inactive ones are left
        # out), so a parent's own activity is read off its conditions in O(1).
        index = {p.name: i for i, p in enumerate(params)}
        conditions = {
            i: [
                (index[parent], _positions(self._axes[index[parent]], allowed))
                for parent, allowed in params[i].when
            ]
            for i in self._parents
        }
        # Depth-first with an explicit stack (no recursion limit on long chains of
        # parents), children pushed in reverse so branches come out in order.
        stack: list[tuple[int, dict[int, int]]] = [(0, {})]
        while stack:
            depth, fixed = stack.pop()
            if depth < len(self._parents):
                i = self._parents[depth]
                if all(j in fixed and fixed[j] in ok for j, ok in conditions[i]):
                    stack.extend(
                        (depth + 1, {**fixed, i: k}) for k in reversed(range(len(self._axes[i])))
                    )
                else:
                    stack.append((depth + 1, fixed))
                continue
            values = {params[j].name: self._axes[j][k] for j, k in fixed.items()}
            active = set(self.space.active_names(values))
            free = tuple(j for j, p in enumerate(params) if p.name in active and j not in parents)
            strides = [1] * len(free)
            for t in range(len(free) - 2, -1, -1):
                strides[t] = strides[t + 1] * len(self._axes[free[t + 1]])
            size = strides[0] * len(self._axes[free[0]]) if free else 1
            branches.append(_Branch(fixed, free, tuple(strides), offset, size))
            offset += size
            if offset > MAX_GRID_POINTS:
                raise _too_large(f"more than {MAX_GRID_POINTS:,}")
            if len(branches) > MAX_GRID_BRANCHES:
                raise SpaceError(
                    "space",
                    f"the grid has more than {MAX_GRID_BRANCHES:,} branches (distinct "
                    "values of the parameters that conditions depend on); narrow the "
                    "space or use another strategy (e.g. random)",
                )
        return branches

    def _branch_key(self, fixed: Mapping[int, int]) -> tuple[int, ...]:
        # -1 marks an inactive parent, which is a branch of its own.
        return tuple(fixed.get(i, -1) for i in self._parents)

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
        """Number of distinct grid points."""
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
        """The parameters of grid point ``index`` (``0 <= index < size``), active only,
        in declaration order."""
        if not 0 <= index < self._size:
            raise IndexError(f"grid index {index} out of range 0..{self._size - 1}")
        branch = self._branches[int(np.searchsorted(self._offsets, index, side="right")) - 1]
        digits = dict(branch.fixed)
        rest = index - branch.offset
        for i, stride in zip(branch.free, branch.strides, strict=True):
            digits[i], rest = divmod(rest, stride)
        params = self.space.params
        return {params[i].name: self._axes[i][digits[i]] for i in sorted(digits)}

    def index_of(self, params: Mapping[str, Any]) -> int | None:
        """The grid index of ``params``, or None when they are not a grid point."""
        if not isinstance(params, Mapping):
            return None
        digits: dict[int, int] = {}
        for i, param in enumerate(self.space.params):
            if param.name not in params:
                continue
            if not param.contains(params[param.name]):
                return None
            digit = self._positions[i].get(param.canonical(params[param.name]))
            if digit is None:
                return None
            digits[i] = digit
        if len(digits) != len(params):
            return None  # unknown keys
        branch = self._by_key.get(self._branch_key(digits))
        if branch is None or len(digits) != len(branch.fixed) + len(branch.free):
            return None
        index = branch.offset
        for i, stride in zip(branch.free, branch.strides, strict=True):
            if i not in digits:
                return None
            index += digits[i] * stride
        return index

    def ask(self, n: int) -> list[Suggestion]:
        """The next ``n`` unvisited grid points (fewer when the grid runs out)."""
        self._check_n(n)
        chosen = self._queue[self._cursor : self._cursor + n]
        self._cursor += len(chosen)
        return [Suggestion(params=self.point(int(i)), info={"grid_index": int(i)}) for i in chosen]
