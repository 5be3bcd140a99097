"""The stopping-rule contract: how the server asks whether a reporting trial goes on.

A stopping rule (median, and its successors) is early stopping at report time, kept
apart from strategies as Optuna's pruners and Vizier's early-stopping policy are kept
apart from samplers (DESIGN.md, principle 2): a strategy suggests trials, a rule only
answers ``continue`` or ``stop`` to a report. A rule is pure: no I/O, no clock, no RNG;
the same options and inputs always give the same answer. The server feeds it the
history (and may cache those inputs for speed, never for correctness); it never asks
the rule for anything else.

This module imports only the standard library and ``search.errors``/``search.status``,
so the light client (``hpo.spec`` validates the ``stopping:`` block with it) pays
nothing for it. Rules are registered by name in ``search.stopping_registry``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from search.errors import OptionError, TakesOptions
from search.status import Decision, Direction

__all__ = ["StoppingRule", "int_option"]


class StoppingRule(TakesOptions, ABC):
    """Base class of all stopping rules.

    Subclasses set ``name`` (the study spec's ``stopping.rule``), override
    ``validate_options`` when they take options, and implement ``decide`` and
    ``reason``. Constructing a rule validates its options: ``OptionError`` naming
    ``"stopping.<key>"``, the option's field in the study spec, where the options sit
    beside ``rule`` (``stopping: {rule: median, warmup_steps: 2}``).

    Contract for ``decide(step, best_so_far, peer_bests, direction)``:

    * the inputs: ``best_so_far`` is the reporting trial's best value over its reports
      at steps ``<= step`` (best by ``direction``); ``peer_bests`` holds, for each
      finished (completed or pruned) other trial of the study that reported at
      ``step``, its best value over its reports at steps ``<= step``: no trial ids, no
      order (the answer must not depend on the order of ``peer_bests``);
    * the answer is ``"continue"`` or ``"stop"`` and depends only on the options and
      these inputs;
    * it never stops a trial that has no peers, nor one reporting a step before
      ``warmup_steps``;
    * it is direction-symmetric: negating every value and flipping ``direction`` gives
      the same answer;
    * non-finite values (NaN, ±inf) do not make it raise.

    ``reason`` explains a ``"stop"`` in one sentence, for the trial's record and the
    worker's log.
    """

    name: ClassVar[str]
    options_field = "stopping"
    options_kind = "rule"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = type(self).validate_options(options)

    @property
    def warmup_steps(self) -> int:
        """The first step this rule may stop a trial at (it continues every earlier one)."""
        return 0

    @abstractmethod
    def decide(
        self,
        step: int,
        best_so_far: float,
        peer_bests: Sequence[float],
        direction: Direction,
    ) -> Decision:
        """``"stop"`` or ``"continue"`` for the trial that just reported ``step`` (see
        the class contract)."""

    @abstractmethod
    def reason(
        self,
        step: int,
        best_so_far: float,
        peer_bests: Sequence[float],
        direction: Direction,
    ) -> str:
        """Why ``decide`` answers ``"stop"`` to these inputs, in one sentence."""


def int_option(options: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """Option ``key`` of a rule as an int in ``[low, high]`` (``default`` when absent);
    integral floats pass (YAML and JSON writers emit ``2.0``), bools and strings do not.
    Raises ``OptionError("stopping.<key>")``."""
    value = options.get(key, default)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(
            f"stopping.{key}", f"must be an integer from {low} to {high}, got {value!r}"
        )
    return value
