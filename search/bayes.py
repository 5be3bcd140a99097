"""Bayesian optimization with a Gaussian process (``search.gp``), restartable.

How a batch of suggestions is made from the history:

1. *Design phase.* Until ``n_initial_points`` trials have been observed, suggestions are
   the points of a quasi-random design (Sobol' by default) fixed by the seed, in order,
   skipping points the history already holds, then seeded random points if the design
   runs out (its points are in flight or failed).
2. *Model phase.* A GP (Matern 5/2, hyperparameters by maximum a posteriori,
   ``search.gp_kernel``) is fitted on the observed trials (at most ``max_fit_points``:
   the best half and the most recent rest) with targets normalized; trials in flight
   (queued or running, and this instance's earlier suggestions) are *fantasized*: the
   acquisition is averaged over joint posterior draws of their values, each draw
   conditioning the candidates and lowering the incumbent when it beats it, so parallel
   workers get different points without the model being told a made-up value
   (``liar: fantasy``; the constant liars tell every one the same value instead).
   Candidates are seeded random points plus perturbations of the best trials, refined
   once around the acquisition's best candidates; each suggestion takes the best
   candidate, then is itself in flight before the next one is chosen.

Observed trials: completed with a finite value, and pruned ones with a finite value or
last intermediate value (``use_pruned``): a pruned trial's partial value is worse than
what it would have reached, which is the verdict pruning already gave, and telling the
model about it keeps it from proposing the same region again. Failed and stopped trials
teach nothing but, like every trial in the space, are not suggested again while
unseen candidates remain. Direction ``maximize`` negates values.

Conditional spaces: every point is encoded on all dimensions with inactive ones imputed
by a constant (``search.encoding``), the same for history and candidates; suggestions
hold active parameters only.

Purity: the only randomness is ``numpy.random.default_rng([seed, len(history),
suggested so far])`` (and a fit seed derived from the seed and the data size), so the
same seed and history give the same suggestions; the kernel cache in ``search.gp``
does not change results.

Import cost: this module needs numpy only. scipy and scikit-optimize (``search.encoding``,
``search.gp``) are imported where a suggestion is computed, so naming, validating or
building the strategy on an empty history (what the study spec does, on the client too)
loads none of them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from search.base import OptionError, Strategy, Suggestion
from search.checks import is_finite_number, option_int, option_number
from search.status import OPEN

if TYPE_CHECKING:
    from search.acquisition import Scorer
    from search.encoding import PointKey, SpaceEncoder
    from search.gp import Fantasies, Posterior

__all__ = ["ACQ_FUNCS", "DEFAULTS", "GENERATORS", "BayesStrategy"]

ACQ_FUNCS = ("gp_hedge", "EI", "PI", "LCB")
GENERATORS = ("sobol", "halton", "lhs", "random")
LIARS = ("fantasy", "min", "mean", "max")
DEFAULTS: dict[str, Any] = {
    "n_initial_points": 10,
    "acq_func": "gp_hedge",
    "initial_point_generator": "sobol",
    "xi": 0.01,
    "kappa": 1.96,
    "max_fit_points": 300,
    "max_kernel_fit_points": 100,
    "n_candidates": 1000,
    "n_restarts_optimizer": 0,
    "fit_maxiter": 60,
    "refit_growth": 0.1,
    # Fantasies rather than one constant lie: a lie moves the posterior mean near every
    # point in flight, so the next suggestions leave the incumbent's basin (README).
    "liar": "fantasy",
    "use_pruned": True,
}
# (low, high) for the integer options; high None = unbounded.
_INT_RANGES: dict[str, tuple[int, int | None]] = {
    "n_initial_points": (1, None),
    "max_fit_points": (2, 5000),
    "max_kernel_fit_points": (2, 5000),
    "n_candidates": (10, 100_000),
    "n_restarts_optimizer": (0, 20),
    "fit_maxiter": (1, 10_000),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "acq_func": ACQ_FUNCS,
    "initial_point_generator": GENERATORS,
    "liar": LIARS,
}
#: (fit, losses, x, y): observations the GP sees, their losses, features, targets.
_FitData = tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]
# Perturbation scales (unit-cube widths) of local candidates, cycled over.
_LOCAL_SIGMAS = (0.02, 0.06, 0.15, 0.3)
_REFINE_SIGMAS = (0.005, 0.015, 0.04)
# Joint draws at the points in flight that a ``liar: fantasy`` acquisition averages over.
_FANTASIES = 128


class BayesStrategy(Strategy):
    """GP Bayesian optimization: quasi-random design, then acquisition over fantasies.

    Options (``OptionError("options.<key>")`` on an unknown key, wrong type or range):

    * ``n_initial_points`` (int >= 1, default 10): design points before the model;
    * ``acq_func`` ("gp_hedge" | "EI" | "PI" | "LCB", default "gp_hedge");
    * ``initial_point_generator`` ("sobol" | "halton" | "lhs" | "random", default "sobol");
    * ``xi`` (float >= 0, default 0.01): EI/PI margin, in target standard deviations;
    * ``kappa`` (float >= 0, default 1.96): LCB weight of the standard deviation;
    * ``max_fit_points`` (int 2..5000, default 300): observations that condition the GP;
    * ``max_kernel_fit_points`` (int 2..5000, default 100): the subset its kernel
      hyperparameters are fitted on (both subsets keep the best half, then the most
      recent observations);
    * ``n_candidates`` (int 10..100000, default 1000): random candidates per ask, plus
      half as many around the best trials and a quarter around the best candidates;
    * ``n_restarts_optimizer`` (int 0..20, default 0) and ``fit_maxiter`` (int
      1..10000, default 60): restarts and iteration cap of the kernel fit's L-BFGS;
    * ``refit_growth`` (float 0..10, default 0.1): the kernel's hyperparameters are
      fitted again once the observations grew by this fraction since their last fit
      (on the observations at that size, the first ones in history order); every
      observation still conditions the posterior. 0 fits on every ask;
    * ``liar`` ("fantasy" | "min" | "mean" | "max", default "fantasy"): how points in
      flight count: EI and PI averaged over joint posterior draws at them and LCB with
      the variance they leave ("fantasy"), or a constant lie told for each, the
      minimum, mean or maximum of the observed targets;
    * ``use_pruned`` (bool, default True): tell the model about pruned trials.

    ``ask(n)`` returns ``n`` distinct points, none equal to a point in flight, and
    none equal to any history point while unseen candidates remain (fewer only in a
    tiny discrete space). ``Suggestion.info`` is ``{"source": "design" | "random" |
    "model"}``, plus ``"acq_func"`` for model suggestions. Unbounded capacity.
    gp_hedge is stateless here: for each suggestion the EI, PI and LCB proposals
    compete with probabilities softmax(-posterior mean), the one-step version of
    scikit-optimize's running tally, which a strategy rebuilt from history cannot keep.
    """

    name = "bayes"
    lookahead = True

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return every option (see the class docstring) with defaults filled in."""
        given = cls._check_option_keys(options, tuple(DEFAULTS))
        out = {**DEFAULTS, **given}
        for key, (low, high) in _INT_RANGES.items():
            out[key] = option_int(key, out[key], low, high)
        for key, allowed in _CHOICES.items():
            if out[key] not in allowed:
                raise OptionError(f"options.{key}", f"must be one of {list(allowed)}")
        for key in ("xi", "kappa"):
            out[key] = option_number(key, out[key], 0.0, math.inf)
        out["refit_growth"] = option_number("refit_growth", out["refit_growth"], 0.0, 10.0)
        if not isinstance(out["use_pruned"], bool):
            raise OptionError("options.use_pruned", "must be true or false")
        return out

    @functools.cached_property
    def _encoder(self) -> SpaceEncoder:
        """The space's encoder (scikit-optimize), built on first use: a strategy built on
        an empty history only to validate its options never needs one."""
        from search.encoding import encoder_for

        return encoder_for(self.space)

    def _setup(self) -> None:
        self._observed: list[tuple[dict[str, Any], float]] = []
        self._pending: list[dict[str, Any]] = []
        self._seen: set[PointKey] = set()
        for trial in self.history:
            point = self._encoder.point_of(trial.params)
            if point is None:  # not in the space
                continue
            params, key = point
            self._seen.add(key)
            value = self._told_value(trial.status, trial.value, trial.intermediate)
            if value is not None:
                self._observed.append((params, self.loss(value)))
            elif trial.status in OPEN:
                self._pending.append(params)
        self._suggested: list[dict[str, Any]] = []
        self._design: list[dict[str, Any]] | None = None

    @property
    def observations(self) -> list[tuple[dict[str, Any], float]]:
        """What the model is told: ``(params, loss)`` per observed trial, in history
        order (loss = value, negated when maximizing)."""
        return [(dict(params), loss) for params, loss in self._observed]

    def _told_value(self, status: str, value: Any, intermediate: Mapping[int, Any]) -> float | None:
        """The value the model learns for a trial, or None when it learns nothing."""

        if status == "completed":
            return float(value) if is_finite_number(value) else None
        if status == "pruned" and self.options["use_pruned"]:
            if is_finite_number(value):
                return float(value)
            steps = [s for s in intermediate if is_finite_number(intermediate[s])]
            return float(intermediate[max(steps)]) if steps else None
        return None

    def ask(self, n: int) -> list[Suggestion]:
        """Up to ``n`` distinct new points (see the class docstring)."""
        self._check_n(n)
        if n == 0:
            return []
        hard = {self._encoder.key(p) for p in (*self._pending, *self._suggested)}
        rng = np.random.default_rng([self.seed, len(self.history), len(self._suggested)])
        enough = len(self._observed) >= self.options["n_initial_points"]
        if enough and self._encoder.n_dims > 0:
            out = self._from_model(n, hard, rng)
        else:
            out = self._from_design(n, hard, rng)
        self._suggested.extend(dict(s.params) for s in out)  # callers may mutate theirs
        return out

    # --- design phase ------------------------------------------------------------------

    def _design_points(self) -> list[dict[str, Any]]:
        """The seed's quasi-random design, as points (computed once per instance)."""
        from scipy.stats import qmc

        if self._design is None:
            size, d = self.options["n_initial_points"], self._encoder.n_dims
            rng = np.random.default_rng([self.seed, 0xD5])
            kind = self.options["initial_point_generator"]
            if d == 0 or kind == "random":
                unit = rng.random((size, d))
            elif kind == "sobol":
                # Drawing a power of two keeps Sobol's balance (and scipy quiet).
                m = max(0, math.ceil(math.log2(size)))
                unit = _qmc(qmc.Sobol, d, rng).random_base2(m)[:size]
            elif kind == "halton":
                unit = _qmc(qmc.Halton, d, rng).random(size)
            else:
                unit = _qmc(qmc.LatinHypercube, d, rng).random(size)
            self._design = self._encoder.decode_unit(unit)
        return self._design

    def _from_design(
        self, n: int, hard: set[PointKey], rng: np.random.Generator
    ) -> list[Suggestion]:
        out: list[Suggestion] = []
        for params in self._design_points():
            key = self._encoder.key(params)
            if key not in hard and key not in self._seen:
                hard.add(key)
                out.append(Suggestion(params=params, info={"source": "design"}))
                if len(out) == n:
                    return out
        return out + self._random_points(n - len(out), hard, rng)

    def _random_points(
        self, n: int, hard: set[PointKey], rng: np.random.Generator
    ) -> list[Suggestion]:
        """Seeded random points, distinct from ``hard`` (and from the history while
        fresh points can be found: a tiny discrete space may have none left)."""
        out: list[Suggestion] = []
        draws = max(64, 20 * n)
        points = self._encoder.decode_unit(rng.random((draws, self._encoder.n_dims)))
        for avoid_seen in (True, False):
            for params in points:
                key = self._encoder.key(params)
                if len(out) < n and key not in hard and not (avoid_seen and key in self._seen):
                    hard.add(key)
                    out.append(Suggestion(params=params, info={"source": "random"}))
        return out

    # --- model phase --------------------------------------------------------------------

    def _model(self) -> tuple[Any, float, np.ndarray, np.ndarray, float, list[dict[str, Any]]]:
        """Fit the GP; return ``(kernel, noise, x, y, lie, best)``: features and
        normalized targets (with the in-flight lies appended unless ``liar`` is
        "fantasy"), the lie, and the five best observed points (anchors for local
        candidates)."""
        enc, opts = self._encoder, self.options
        data = fit, losses, x, y = self._fit_data(len(self._observed))
        kernel, noise = self._hyperparameters(data)
        liar = opts["liar"]
        lie = float(y.min() if liar == "min" else y.max() if liar == "max" else y.mean())
        flying = [*self._pending, *self._suggested]
        if flying and liar != "fantasy":
            x = np.vstack([x, enc.features(flying)])
            y = np.concatenate([y, np.full(len(flying), lie)])
        best = sorted(range(len(fit)), key=lambda i: (losses[i], i))[:5]
        return kernel, noise, x, y, lie, [fit[i][0] for i in best]

    def _fit_data(self, size: int) -> _FitData:
        """``(fit, losses, x, y)`` of the first ``size`` observations: the bounded
        subset the GP sees, its losses, features and normalized targets."""
        from search.gp import fit_subset, normalized

        fit = fit_subset(self._observed[:size], self.options["max_fit_points"])
        losses = np.array([loss for _, loss in fit])
        return fit, losses, self._encoder.features([p for p, _ in fit]), normalized(losses)

    def _hyperparameters(self, data: _FitData) -> tuple[Any, float]:
        """The kernel and noise level, fitted on the first observations in history
        order, as many as the last size of the refit schedule (``refit_growth``) that
        the observations reached: the same fit, from the cache, until the next one.
        ``data``: :meth:`_fit_data` of every observation, reused when the schedule is
        at that size."""
        from search.gp import fit_kernel, fit_subset, refit_size

        enc, opts = self._encoder, self.options
        size = refit_size(len(self._observed), opts["n_initial_points"], opts["refit_growth"])
        fit, losses, x, y = data if size == len(self._observed) else self._fit_data(size)
        # Hyperparameters from a smaller subset: the fit costs O(n^3) per L-BFGS step
        # (and scikit-learn's Matern gradient O(n^2 d) in memory), the posterior one
        # Cholesky, so the full fit set still conditions the model.
        tune = fit_subset(list(range(len(fit))), opts["max_kernel_fit_points"], losses)
        fit_seed = int(np.random.SeedSequence([self.seed, len(fit)]).generate_state(1)[0])
        return fit_kernel(
            enc.skopt_space,
            x[tune],
            y[tune],
            seed=fit_seed,
            n_restarts=opts["n_restarts_optimizer"],
            maxiter=opts["fit_maxiter"],
        )

    def _from_model(
        self, n: int, hard: set[PointKey], rng: np.random.Generator
    ) -> list[Suggestion]:
        from search.acquisition import Picker, top
        from search.gp import Fantasies, Posterior

        kernel, noise, x, y, lie, anchors = self._model()
        y_best = float(y.min())  # no lie is below it; fantasies lower it per draw
        m = self.options["n_candidates"]
        fantasy = self.options["liar"] == "fantasy"
        # With fantasies the points in flight are the posterior's first columns.
        flying = [*self._pending, *self._suggested] if fantasy else []
        r0 = len(flying)
        anchor_rows = self._encoder.encode_unit(anchors)
        rows = np.vstack(
            [
                rng.random((m, self._encoder.n_dims)),
                self._local(anchor_rows, m // 2, _LOCAL_SIGMAS, rng),
            ]
        )
        features = self._features(rows)
        if r0:
            features = np.vstack([self._encoder.features(flying), features])
        post = Posterior(kernel, noise, x, y, features)
        columns = list(range(r0))  # the fantasized columns: in flight, then suggested
        draws = rng.standard_normal((r0 + n, _FANTASIES)) if fantasy else np.zeros((0, 0))

        def fantasies() -> Fantasies | None:
            return Fantasies(post, columns, draws[: len(columns)]) if columns else None

        # Refine once: fine perturbations of the best candidates of each acquisition.
        fant = fantasies()
        leaders = sorted(
            {
                int(i)
                for a in self._portfolio()
                for i in top(self._scorer(a, post, y_best, fant, r0), 2)
            }
        )
        # From the candidates as points (discrete values at their cells' middles).
        top_rows = self._encoder.encode_unit(self._decode(rows[leaders]))
        finer = self._local(top_rows, m // 4, _REFINE_SIGMAS, rng)
        post.extend(self._features(finer))
        rows = np.vstack([rows, finer])
        fant = fantasies()

        pick = Picker(self._point_maker(rows), len(rows), hard, self._seen)
        out: list[Suggestion] = []
        while len(out) < n:
            found = {
                a: pick.best_bounded(self._scorer(a, post, y_best, fant, r0))
                for a in self._portfolio()
            }
            proposals = {a: j for a, j in found.items() if j is not None}
            if len(proposals) < len(found):
                break  # a tiny discrete space with every point in flight
            names = list(proposals)
            acq = names[0]
            if len(names) > 1:
                gains = -np.array([post.mean[r0 + proposals[a]] for a in names])
                probs = np.exp(gains - gains.max())
                acq = names[int(rng.choice(len(names), p=probs / probs.sum()))]
            j = proposals[acq]
            out.append(Suggestion(params=pick.take(j), info={"source": "model", "acq_func": acq}))
            if fantasy:
                columns.append(r0 + j)
                fant = fantasies() if len(out) < n else None
            else:
                post.add_lie(r0 + j, lie)
        return out

    def _portfolio(self) -> tuple[str, ...]:
        acq = self.options["acq_func"]
        return ("EI", "PI", "LCB") if acq == "gp_hedge" else (acq,)

    def _scorer(
        self, name: str, post: Posterior, y_best: float, fant: Fantasies | None, skip: int
    ) -> Scorer:
        from search.acquisition import scorer

        return scorer(name, post, y_best, fant, skip, self.options["xi"], self.options["kappa"])

    def _point_maker(self, rows: np.ndarray) -> Callable[[int], tuple[dict[str, Any], PointKey]]:
        """The point and key of candidate ``i`` among unit-cube ``rows``."""

        def point(i: int) -> tuple[dict[str, Any], PointKey]:
            params = self._decode(rows[i : i + 1])[0]
            return params, self._encoder.key(params)

        return point

    def _decode(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Points of unit-cube rows (a subclass may pin a coordinate here)."""
        return self._encoder.decode_unit(rows)

    def _features(self, rows: np.ndarray) -> np.ndarray:
        """Model features of unit-cube rows: ``features(_decode(rows))``."""
        return self._encoder.unit_features(rows)

    def _local(
        self,
        anchors: np.ndarray,
        m: int,
        sigmas: tuple[float, ...],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """``m`` perturbations of the unit-cube rows ``anchors``: Gaussian steps on
        ordered coordinates, and on average one categorical coordinate redrawn per row."""
        enc = self._encoder
        if not len(anchors) or m <= 0:
            return np.zeros((0, enc.n_dims))
        base = anchors[np.arange(m) % len(anchors)]
        steps = rng.normal(size=base.shape) * np.resize(np.array(sigmas), m)[:, None]
        unit = base + np.where(enc.categorical, 0.0, steps)
        redraw = enc.categorical & (rng.random(base.shape) < 1.0 / max(1, enc.n_dims))
        return np.clip(np.where(redraw, rng.random(base.shape), unit), 0.0, 1.0)


def _qmc(engine: Any, d: int, rng: np.random.Generator) -> Any:
    """A scrambled QMC engine seeded by ``rng`` (``rng=`` since SciPy 1.15, ``seed=`` before)."""
    try:
        return engine(d, rng=rng)
    except TypeError:
        return engine(d, seed=rng)
