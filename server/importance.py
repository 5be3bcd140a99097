"""Parameter importance of a study: which parameters move the objective.

Estimated from completed trials with a small extra-trees ensemble (scikit-learn) that
predicts the objective from the parameters; a parameter's importance is its normalized
mean decrease in impurity (MDI). Encoding, one feature per parameter:

* float/int: the value, ``log10`` of it for a log-scale parameter;
* categorical: the index of the choice (trees split codes as well as one-hot, and one
  feature per parameter needs no summing back);
* a parameter inactive in a trial (conditional; a stored point holds exactly its
  active parameters, so: absent): a sentinel below every real value (one range below
  the lowest; -1 for a categorical), so trees split "inactive" off like any value.

The objective is rank-transformed first so one diverged trial (a loss of 1e9) cannot
dominate the impurity. At most ``MAX_TRIALS`` trials are used (a seeded subsample) and
the ensemble is bounded (``N_ESTIMATORS`` trees of depth ``MAX_DEPTH``, one thread), so an
estimate takes well under 0.3 s at any study size. A study's result is kept in the
app's caches (:mod:`server.caches`) with the number of completed trials it was made
from: a new completed trial makes a new estimate.
"""

from __future__ import annotations

import json
import math
import typing
import zlib
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import ExtraTreesRegressor
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from hpo.insights import ParamImportance, StudyImportance
from search.checks import choice_key
from search.params import CategoricalParam
from search.space import SearchSpace
from server.caches import CacheKind, caches_of
from server.insights import study_space
from server.tables import Study, Trial

__all__ = [
    "MAX_DEPTH",
    "MAX_TRIALS",
    "METHOD",
    "MIN_LEAF",
    "MIN_TRIALS",
    "N_ESTIMATORS",
    "estimate",
    "param_importance",
]

METHOD = "extra-trees-mdi"
MIN_TRIALS = 4
#: Bounds of one estimate: ~0.1 s at 2000 trials x 15 parameters on a busy 2-core
#: machine, half of it the trees (whose fixed cost per tree dominates small studies).
MAX_TRIALS = 2000
N_ESTIMATORS = 32
MAX_DEPTH = 6
MIN_LEAF = 5
SEED = 0
#: Studies whose estimate is kept; one entry is a few hundred bytes.
CACHE_SIZE = 64

#: A study's estimate, with the number of completed trials it was made from.
IMPORTANCE: CacheKind[tuple[int, StudyImportance]] = CacheKind("importance", CACHE_SIZE)


def param_importance(session: Session, study: Study) -> StudyImportance:
    """The study's parameter importance (see ``StudyImportance``), from its completed
    trials with a value; cached (the app's caches) until that number changes."""
    completed = (Trial.study_id == study.id, Trial.status == "completed", Trial.value.is_not(None))
    n = session.scalar(select(func.count()).select_from(Trial).where(*completed)) or 0
    caches = caches_of(session)
    hit = caches.peek(IMPORTANCE, study)
    if hit is not None and hit[0] == n:
        return hit[1]
    names, space = study_space(study)
    if n < MIN_TRIALS:
        result = _empty(n, f"needs at least {MIN_TRIALS} completed trials, has {n}")
    else:
        # Core rows (no ORM result layer); params are parsed only for the subsample.
        query = select(Trial.value, cast(Trial.params, Text)).where(*completed)
        rows = session.connection().execute(query.order_by(Trial.number)).all()
        if len(rows) > MAX_TRIALS:
            pick = np.sort(np.random.default_rng(SEED).choice(len(rows), MAX_TRIALS, replace=False))
            rows = [rows[i] for i in pick]
        values = [typing.cast(float, r[0]) for r in rows]  # the query's value is not null
        params = [_load(r[1]) for r in rows]
        result = estimate(names, space, params, values)
    caches.put(IMPORTANCE, study, (n, result))
    return result


def estimate(
    names: list[str],
    space: SearchSpace | None,
    params: list[dict[str, Any]],
    values: list[float],
) -> StudyImportance:
    """Importances of ``names`` from trials' ``params`` and objective ``values``
    (aligned lists). Deterministic: the same inputs give the same answer."""
    n = len(values)
    if n < MIN_TRIALS:
        return _empty(n, f"needs at least {MIN_TRIALS} completed trials, has {n}")
    if not names:
        return _empty(n, "the study has no parameters")
    y = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(y)) or float(np.ptp(y)) == 0.0:
        return _empty(n, "the objective is constant across completed trials")
    x = _features(names, space, params)
    # Extra-trees: random split points make a fit ~2x faster than a random forest's
    # sorted splits, and every feature is a candidate at every node (max_features=1.0)
    # so a noise parameter is never chosen merely for lack of a better one.
    forest = ExtraTreesRegressor(
        n_estimators=N_ESTIMATORS,
        max_depth=MAX_DEPTH,
        # Leaves of MIN_LEAF smooth the noise of large studies; small ones need 1 to split.
        min_samples_leaf=max(1, min(MIN_LEAF, n // 10)),
        max_features=1.0,
        random_state=SEED,
        n_jobs=1,
    )
    forest.fit(x, rankdata(y))
    raw = np.asarray(forest.feature_importances_, dtype=float)
    total = float(raw.sum())
    if not math.isfinite(total) or total <= 0.0:
        return _empty(n, "no parameter varies across completed trials")
    shares = raw / total
    order = sorted(range(len(names)), key=lambda j: (-shares[j], j))
    return StudyImportance(
        method=METHOD,
        n_trials=n,
        importances=[ParamImportance(param=names[j], importance=float(shares[j])) for j in order],
        reason=None,
    )


def _empty(n: int, reason: str) -> StudyImportance:
    return StudyImportance(method=METHOD, n_trials=n, importances=[], reason=reason)


def _load(text: str | None) -> dict[str, Any]:
    params = json.loads(text) if text else {}
    return params if isinstance(params, dict) else {}


def _features(
    names: list[str], space: SearchSpace | None, params: list[dict[str, Any]]
) -> np.ndarray:
    """The (trials x parameters) matrix described in the module docstring. A stored
    point holds exactly its active parameters, so an absent key means inactive."""
    x = np.empty((len(params), len(names)))
    for j, name in enumerate(names):
        param = space[name] if space is not None and name in space else None
        if isinstance(param, CategoricalParam):
            codes = {choice_key(c): float(k) for k, c in enumerate(param.choices)}
            x[:, j] = [_code(p[name], codes) if name in p else -1.0 for p in params]
            continue
        log = bool(getattr(param, "log", False))
        column = np.array([_number(p[name], log) if name in p else math.nan for p in params])
        missing = np.isnan(column)
        if missing.any():  # inactive: one range below the lowest real value
            known = column[~missing]
            low, high = (float(known.min()), float(known.max())) if known.size else (0.0, 0.0)
            column[missing] = low - max(high - low, 1.0)
        x[:, j] = column
    return x


def _code(value: Any, codes: dict[Any, float]) -> float:
    """A categorical value as its choice index; -1 (like inactive) when not a choice."""
    try:
        return codes.get(choice_key(value), -1.0)
    except TypeError:  # an unhashable stored value
        return -1.0


def _number(value: Any, log: bool) -> float:
    """A numeric value (log10 on a log scale); NaN (later: the sentinel) when unusable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            # A parameter the space no longer describes may hold strings: a stable
            # code (crc32, not hash(): that one changes from process to process).
            return float(zlib.crc32(value.encode()))
        return math.nan
    value = float(value)
    if not math.isfinite(value) or (log and value <= 0):
        return math.nan
    return math.log10(value) if log else value
