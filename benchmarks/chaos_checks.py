"""The chaos soak's invariants over the stored trials and the training evidence
(``benchmarks.chaos_evidence``): each a count of what breaks it (0: it holds) and a few
examples to start debugging from.

Trial invariants (pure functions of the data; the soak adds the fleet's own: 5xx
answers, workers and studies that did not recover):

* ``trials terminal, numbered 0..n-1``: every trial completed, pruned or failed, and
  each study's numbers are exactly 0..n-1 (no gap, no duplicate);
* ``value from one attempt``: a completed or pruned trial's value is the objective of
  its last report (highest step), reports come from attempts in order (a later step
  never from an earlier attempt, none from past the trial's attempt), and a completed
  trial reached its budget with the value the training function computes there;
* ``one report per (trial, step)``: across attempts, no step reported twice, and none
  missing between where the trial started (1, or a promoted trial's parent's budget +
  1) and where it ended;
* ``resume_step = checkpoint's step``: each attempt's ``reporter.resume_step`` names
  the step the checkpoint folder really holds (None for an empty folder);
* ``failed though training finished``: a failed trial whose final step was reported,
  or whose function returned at its final step;
* ``ran to completion twice``: two attempts of a trial both trained its final step.
  Excused (and counted apart): an earlier attempt whose process a fault killed with
  SIGKILL after it trained the final step, before the service could know.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import search.status
from benchmarks.chaos_evidence import Attempt, StoredTrial, TrialKey
from benchmarks.chaos_faults import Fault
from benchmarks.chaos_trainable import objective

__all__ = ["TERMINAL", "Evidence", "Invariant", "check_trials", "kill_times"]

#: What a soak trial ends as (no study is stopped by the soak).
TERMINAL = frozenset(search.status.TERMINAL - {"stopped"})
#: Examples kept per invariant.
EXAMPLES = 5

Evidence = dict[TrialKey, dict[int, Attempt]]


@dataclass
class Invariant:
    """One invariant's verdict: ``count`` things broke it; ``examples`` say which."""

    name: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    note: str = ""  # e.g. what was excused

    @property
    def passed(self) -> bool:
        return self.count == 0

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


def kill_times(faults: Iterable[Fault]) -> dict[int, float]:
    """Process id -> when (``time.time()``) a fault SIGKILLed it."""
    return {pid: wall for f in faults for pid, wall in f.killed}


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _numbering(trials: list[StoredTrial], inv: Invariant) -> None:
    by_study: dict[str, list[StoredTrial]] = {}
    for t in trials:
        by_study.setdefault(t.study, []).append(t)
        if t.status not in TERMINAL:
            inv.add(f"{t.label()}: {t.status} (attempt {t.attempt})")
    for study, rows in by_study.items():
        numbers = sorted(t.number for t in rows)
        if numbers != list(range(len(numbers))):
            dupes = [n for n, c in Counter(numbers).items() if c > 1]
            gaps = sorted(set(range(max(numbers) + 1)) - set(numbers))
            inv.add(f"{study}: numbers not 0..{len(numbers) - 1}: gaps {gaps}, twice {dupes}")


def _value(t: StoredTrial, inv: Invariant) -> None:
    if t.status not in ("completed", "pruned"):
        return
    if not t.reports:
        inv.add(f"{t.label()}: {t.status} with value {t.value} but no report")
        return
    top = max(step for _a, step, _v in t.reports)
    last = [(a, v) for a, step, v in t.reports if step == top]
    if not all(_same(t.value, v) for _a, v in last):
        inv.add(f"{t.label()}: value {t.value} but step {top} reported {last} (attempt, value)")
        return
    by_step = sorted(t.reports, key=lambda r: (r[1], r[0]))
    for (a1, s1, _), (a2, s2, _) in itertools.pairwise(by_step):
        if a2 < a1:
            inv.add(f"{t.label()}: step {s2} from attempt {a2} after step {s1} from attempt {a1}")
            return
    if by_step[-1][0] > t.attempt:
        inv.add(f"{t.label()}: a report of attempt {by_step[-1][0]} > the trial's {t.attempt}")
        return
    if t.status == "completed":
        expected = objective(t.params, t.epochs)
        if top != t.epochs or not _same(t.value, expected):
            inv.add(
                f"{t.label()}: completed at step {top} of {t.epochs} with {t.value}, "
                f"training gives {expected} there"
            )


def _reports(t: StoredTrial, parents: dict[TrialKey, StoredTrial], inv: Invariant) -> None:
    counts = Counter(step for _a, step, _v in t.reports)
    twice = sorted(step for step, n in counts.items() if n > 1)
    missing: list[int] = []
    if t.status in ("completed", "pruned") and counts:
        parent = parents.get((t.study, t.parent)) if t.parent is not None else None
        first = parent.epochs + 1 if parent is not None else 1
        first = min(first, min(counts))
        last = t.epochs if t.status == "completed" else max(counts)
        missing = [s for s in range(first, last + 1) if s not in counts]
    if twice or missing:
        who = {s: sorted(a for a, step, _v in t.reports if step == s) for s in twice[:3]}
        inv.add(
            f"{t.label()} ({t.status}): steps reported twice {twice} (by attempts {who}), "
            f"missing {missing}"
        )


def _resumes(t: StoredTrial, attempts: dict[int, Attempt], inv: Invariant) -> None:
    for number, attempt in sorted(attempts.items()):
        for start in attempt.of("start"):
            if start["resume_step"] != start["checkpoint_step"]:
                inv.add(
                    f"{t.label()} attempt {number}: resume_step {start['resume_step']} but the "
                    f"checkpoint holds step {start['checkpoint_step']}"
                )


def _failed_finished(t: StoredTrial, attempts: dict[int, Attempt], inv: Invariant) -> None:
    if t.status != "failed":
        return
    reported = any(step == t.epochs for _a, step, _v in t.reports)
    returned = sorted(n for n, a in attempts.items() if a.returned_at(t.epochs))
    if reported or returned:
        inv.add(
            f"{t.label()}: failed ({t.error}) though step {t.epochs} of {t.epochs} was "
            f"{'reported' if reported else 'trained'}; returned there in attempts {returned}"
        )


def _twice(
    t: StoredTrial, attempts: dict[int, Attempt], killed: dict[int, float], inv: Invariant
) -> int:
    """Counts the trial into ``inv`` when two attempts trained its final step; returns 1
    when that happened but is excused (see the module doc), else 0."""
    finals = [(n, a, a.trained(t.epochs)) for n, a in sorted(attempts.items())]
    finals = [(n, a, e) for n, a, e in finals if e is not None]
    if len(finals) < 2:
        return 0

    def excused(attempt: Attempt, final: dict[str, float]) -> bool:
        # Its process was killed after it trained the final step, and wrote nothing
        # after the kill (else that pid was another process's by then).
        last = max(e["t"] for e in attempt.events)
        return any(final["t"] <= last < killed.get(pid, -math.inf) for pid in attempt.pids)

    if all(excused(a, e) for _n, a, e in finals[:-1]):
        return 1
    inv.add(
        f"{t.label()} ({t.status}): attempts {[n for n, _a, _e in finals]} each trained "
        f"step {t.epochs} of {t.epochs}"
    )
    return 0


def check_trials(
    trials: list[StoredTrial], evidence: Evidence, killed: dict[int, float]
) -> list[Invariant]:
    """The trial invariants (module doc), in the order the soak prints them.
    ``killed``: process id -> wall time a fault SIGKILLed it (:func:`kill_times`)."""
    numbering = Invariant("trials terminal, numbered 0..n-1")
    value = Invariant("value from one attempt")
    reports = Invariant("one report per (trial, step)")
    resumes = Invariant("resume_step = checkpoint's step")
    failed = Invariant("failed though training finished")
    twice = Invariant("ran to completion twice")
    _numbering(trials, numbering)
    parents = {t.key: t for t in trials}
    excused = 0
    for t in trials:
        attempts = evidence.get(t.key, {})
        _value(t, value)
        _reports(t, parents, reports)
        _resumes(t, attempts, resumes)
        _failed_finished(t, attempts, failed)
        excused += _twice(t, attempts, killed, twice)
    if excused:
        twice.note = f"{excused} excused: killed -9 right after training the final step"
    return [numbering, value, reports, resumes, failed, twice]
