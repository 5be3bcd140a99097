"""The study spec: what a user submits (YAML/JSON) to describe a study.

One schema, shared by the CLI, the SDK and the server, so a spec that validates on the
client validates on the server. Structural checks are pydantic's; the semantic checks
(search space, strategy options, model and data set names) run in one model validator and
raise :class:`SpecFieldError`, whose ``ctx["field"]`` is the dotted path of the bad field
(``space.lr.low``, ``strategy.options.points``, ``train.model``), so every layer can name it.
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hpo.catalog import (
    BUILTIN_DATASETS,
    BUILTIN_METRICS,
    BUILTIN_MODELS,
    IMAGE_DATASETS,
    IMAGE_MODELS,
    MODEL_PARAM,
    MODEL_PARAMS,
    TRAINING_PARAMS,
    known_params,
)
from hpo.resources import Resources
from search import SearchSpace, SpaceError, validate_strategy
from search.base import OptionError
from search.params import CategoricalParam
from search.space import did_you_mean, space_errors
from search.stopping_registry import stopping_rule_names, validate_stopping_rule

__all__ = [
    "ENTRYPOINT_PATTERN",
    "NAME_PATTERN",
    "Budget",
    "Objective",
    "SpecFieldError",
    "StoppingSpec",
    "StrategySpec",
    "StudySpec",
    "TrainSpec",
    "check_json_text",
    "load_spec_file",
    "parse_spec_text",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
Scalar = str | int | float | bool | None


def SpecFieldError(field: str, message: str) -> PydanticCustomError:
    """A validation error that names the offending field by its dotted path."""
    return PydanticCustomError(
        "spec_field", "{field}: {message}", {"field": field, "message": message}
    )


def SpecFieldErrors(errors: list[tuple[str, str]]) -> PydanticCustomError:
    """Several field errors found at once, as one validation error: the first as
    :func:`SpecFieldError`, the others in ``ctx["more"]`` (the server's 422 lists each,
    so every problem is reported in one go)."""
    (field, message), *rest = errors
    more = [{"field": f, "message": m} for f, m in rest]
    others = "".join(f"\n{f}: {m}" for f, m in rest)
    return PydanticCustomError(
        "spec_field",
        "{field}: {message}{others}",
        {"field": field, "message": message, "more": more, "others": others},
    )


def check_json_text(value: Any, field: str) -> None:
    """Raise a field-named error for any string (key or value) in a JSON-like structure
    that a database cannot store: lone surrogates (not encodable as UTF-8) or NUL
    (refused by PostgreSQL). Such input must be refused at the edge, not stored."""
    if isinstance(value, str):
        if "\x00" in value:
            raise SpecFieldError(field, "text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SpecFieldError(field, "text is not valid UTF-8 (lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json_text(key, field)
            check_json_text(item, f"{field}.{key}" if isinstance(key, str) else field)
    elif isinstance(value, list | tuple):
        for item in value:
            check_json_text(item, field)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    """The metric a trial is judged by, and whether bigger or smaller is better."""

    metric: str = Field(default="val_accuracy", min_length=1, max_length=128)
    direction: Literal["minimize", "maximize"] | None = Field(
        default=None, description="Default: the metric's natural direction."
    )


class StrategySpec(_Strict):
    """Which strategy suggests trials, its seed (stored so a study can be replayed) and
    its options (validated by the strategy itself)."""

    name: str = "random"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(_Strict):
    """How much a study may spend: trials in total, trials at once, epochs per trial."""

    max_trials: int = Field(default=20, ge=1, le=1_000_000)
    max_parallel: int = Field(default=2, ge=1, le=10_000)
    epochs: int = Field(default=10, ge=1, le=100_000)
    max_retries: int = Field(
        default=2, ge=0, le=100, description="Retries of a trial whose worker was lost."
    )
    trial_timeout: float = Field(
        default=86_400.0, gt=0, le=30 * 86_400.0, description="Seconds one attempt may run."
    )
    max_consecutive_failures: int = Field(
        default=10,
        ge=0,
        le=1_000_000,
        description=(
            "Fail fast: after this many trials in a row ended failed, the study stops as "
            "failed and says why (0: never)."
        ),
    )


class StoppingSpec(BaseModel):
    """Early stopping at report time, with any strategy: ``rule`` names a stopping rule
    of ``search.stopping_registry`` (``median`` stops a trial whose best value so far is
    worse than the median of earlier trials at the same step), and the rule's options sit
    beside it (``warmup_steps``, ``min_trials``), validated and completed with their
    defaults by the rule itself: a new rule needs no edit here."""

    model_config = ConfigDict(extra="allow")

    rule: str = Field(
        default="median",
        description="The stopping rule; its options sit beside this key.",
        json_schema_extra={"enum": [*stopping_rule_names()]},
    )

    @model_validator(mode="after")
    def _rule_options(self) -> StoppingSpec:
        try:
            options = validate_stopping_rule(self.rule, self.model_extra)
        except OptionError as err:
            raise SpecFieldError(err.field, err.message) from None
        extra = self.__pydantic_extra__
        if extra is not None:
            extra.clear()
            extra.update(options)
        return self


#: ``package.module:function``: a dotted module path, a colon, a function name (use
#: ``fullmatch``: ``$`` would let a trailing newline through).
ENTRYPOINT_PATTERN = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
)


class TrainSpec(_Strict):
    """What each trial trains: a built-in model on a data set, or the user's own
    training function (``entrypoint``), plus fixed parameters that every trial shares
    (e.g. ``optimizer: adam`` when it is not searched).

    With an ``entrypoint`` (``package.module:function``), ``model`` and ``dataset`` are
    not used: the worker imports the function and calls it with each trial's parameters
    and a reporter (``worker.trainable``). The server never imports it.
    """

    model: str = "mlp"
    dataset: str = "digits"
    entrypoint: str | None = Field(
        default=None,
        max_length=512,
        description="Your training function, package.module:function, importable on workers.",
    )
    params: dict[str, Scalar] = Field(default_factory=dict)
    processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Processes per trial, launched as torchrun does (RANK, LOCAL_RANK, WORLD_SIZE, "
            "MASTER_ADDR, MASTER_PORT set for each; all see the trial's devices); only "
            "rank 0 reports. Needs an entrypoint."
        ),
    )


class StudySpec(_Strict):
    """A whole study. ``StudySpec.model_validate(data)`` is the one entry point."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique study name.")
    project: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The project the study belongs to (default: the default project).",
    )
    description: str = Field(default="", max_length=10_000)
    objective: Objective = Field(default_factory=Objective)
    space: dict[str, Any] = Field(description="Parameter name -> parameter spec.")
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: Budget = Field(default_factory=Budget)
    stopping: StoppingSpec | None = Field(default=None, description="Early stopping rule.")
    train: TrainSpec = Field(default_factory=TrainSpec)
    resources: Resources = Field(
        default_factory=Resources, description="Pool and GPUs of each trial."
    )
    priority: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Weight of this study's share of its pool when trials wait for slots.",
    )
    preempt: bool = Field(
        default=False,
        description=(
            "When its pool is full and this study is below its share, ask running trials "
            "of lower-priority studies to hand back at their next checkpoint (they resume "
            "later from it, neither failed nor retried)."
        ),
    )
    runner: Literal["workers", "external"] = Field(
        default="workers",
        description=(
            "Who evaluates the trials: 'workers' (the service queues them to its workers, "
            "which run 'train') or 'external' (ask/tell: only callers of "
            "POST /studies/{name}/suggest lease them; no worker ever runs one)."
        ),
    )

    @field_validator("space")
    @classmethod
    def _space_parses(cls, space: dict[str, Any]) -> dict[str, Any]:
        # Here, beside the other fields' checks, so every problem of the space and of
        # the other sections is reported at once.
        errors = space_errors(space)
        if errors:
            raise SpecFieldErrors(
                [("space" if e.field == "space" else f"space.{e.field}", e.message) for e in errors]
            )
        return space

    @model_validator(mode="after")
    def _semantic_checks(self) -> StudySpec:
        check_json_text(self.description, "description")
        check_json_text(self.space, "space")
        check_json_text(self.strategy.options, "strategy.options")
        check_json_text(self.train.params, "train.params")
        try:
            space = SearchSpace.from_dict(self.space)
        except SpaceError as err:
            field = "space" if err.field == "space" else f"space.{err.field}"
            raise SpecFieldError(field, err.message) from None
        try:
            options = validate_strategy(
                self.strategy.name, self.strategy.options, space, max_epochs=self.budget.epochs
            )
        except SpaceError as err:
            raise SpecFieldError("space", err.message) from None
        except OptionError as err:
            raise SpecFieldError(err.field, err.message) from None
        self.strategy.options = options
        if self.runner == "external" and self.train.entrypoint is None:
            # Ask/tell: the caller trains, so the metric and parameters are the
            # caller's; nothing of the built-in training applies.
            self._default_direction()
            return self
        if self.train.entrypoint is not None:
            self._check_entrypoint(space)
            return self
        if self.train.processes > 1:
            raise SpecFieldError(
                "train.processes",
                "a distributed launch runs your training function: set train.entrypoint",
            )
        if self.train.model not in BUILTIN_MODELS:
            raise SpecFieldError(
                "train.model",
                f"unknown model {self.train.model!r}; known: {', '.join(BUILTIN_MODELS)}",
            )
        if self.train.dataset not in BUILTIN_DATASETS:
            raise SpecFieldError(
                "train.dataset",
                f"unknown dataset {self.train.dataset!r}; known: {', '.join(BUILTIN_DATASETS)}",
            )
        if self.objective.metric not in BUILTIN_METRICS:
            raise SpecFieldError(
                "objective.metric",
                f"unknown metric {self.objective.metric!r} for built-in training; "
                f"known: {', '.join(BUILTIN_METRICS)}",
            )
        if self.objective.direction is None:
            self.objective.direction = BUILTIN_METRICS[self.objective.metric]
        models = self._models(space)
        known = known_params(models)
        label = "/".join(models)
        for name in space.names:
            if name not in known:
                raise SpecFieldError(
                    f"space.{name}",
                    f"{label} training has no parameter {name!r}; "
                    f"known: {', '.join(sorted(known))}",
                )
            if name in TRAINING_PARAMS or name == MODEL_PARAM:
                continue
            # Models whose trials may have this parameter active must all read it, or
            # those trials would silently ignore it.
            allowed = dict(space[name].when).get(MODEL_PARAM, tuple(models))
            idle = [m for m in models if m in allowed and name not in MODEL_PARAMS[m]]
            if idle:
                readers = [m for m in models if name in MODEL_PARAMS[m]]
                raise SpecFieldError(
                    f"space.{name}",
                    f"{', '.join(idle)} training has no parameter {name!r}; "
                    f"add when: {{{MODEL_PARAM}: {readers if len(readers) > 1 else readers[0]}}}",
                )
        for key in self.train.params:
            if key not in known:
                raise SpecFieldError(
                    f"train.params.{key}",
                    f"{label} training has no parameter {key!r}; known: {', '.join(sorted(known))}",
                )
        self._check_fixed_params(space)
        return self

    def _check_fixed_params(self, space: SearchSpace) -> None:
        for key, value in self.train.params.items():
            if key in space.names:
                raise SpecFieldError(f"train.params.{key}", "is also a searched parameter in space")
            if isinstance(value, float) and not math.isfinite(value):
                raise SpecFieldError(f"train.params.{key}", "must be a finite number")

    def _check_entrypoint(self, space: SearchSpace) -> None:
        """Checks for user training code. Only the entrypoint's shape is checked: the
        server never imports it (it may be installed on the workers only), so which
        parameters it reads and which metrics it reports are the function's business;
        a missing objective metric fails the trial at run time, naming the metric."""
        entrypoint = self.train.entrypoint or ""
        if not ENTRYPOINT_PATTERN.fullmatch(entrypoint):
            raise SpecFieldError(
                "train.entrypoint",
                f"{entrypoint!r} is not package.module:function "
                "(a dotted module path, a colon, a function name)",
            )
        self._default_direction()
        self._check_fixed_params(space)

    def _default_direction(self) -> None:
        """A built-in metric's natural direction; a custom metric must name one."""
        if self.objective.direction is None:
            if self.objective.metric not in BUILTIN_METRICS:
                raise SpecFieldError(
                    "objective.direction",
                    f"set minimize or maximize for the custom metric {self.objective.metric!r}",
                )
            self.objective.direction = BUILTIN_METRICS[self.objective.metric]

    def _models(self, space: SearchSpace) -> list[str]:
        """Every architecture a trial may train: ``train.model``, or the choices of a
        searched ``model`` parameter (or a fixed one), each checked against the data set."""
        models = [self.train.model]
        where = "train.model"
        if MODEL_PARAM in space.names:
            param = space[MODEL_PARAM]
            where = f"space.{MODEL_PARAM}"
            if not isinstance(param, CategoricalParam):
                raise SpecFieldError(where, "must be categorical (choices of model names)")
            if param.when:
                raise SpecFieldError(f"{where}.when", "the model choice cannot be conditional")
            models = list(param.choices)
        elif MODEL_PARAM in self.train.params:
            raise SpecFieldError(
                f"train.params.{MODEL_PARAM}",
                "set train.model to fix the model, or search it in space",
            )
        for model in models:
            if model not in BUILTIN_MODELS:
                raise SpecFieldError(
                    where, f"unknown model {model!r}; known: {', '.join(BUILTIN_MODELS)}"
                )
            if model in IMAGE_MODELS and self.train.dataset not in IMAGE_DATASETS:
                raise SpecFieldError(
                    where,
                    f"{model} needs an image data set ({', '.join(sorted(IMAGE_DATASETS))}); "
                    f"{self.train.dataset!r} is not one",
                )
        return [str(m) for m in models]


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON spec file into a plain dict (validation is the caller's).

    Raises ``ValueError`` with a readable message for unreadable or non-mapping files.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    return parse_spec_text(text, source=str(path))


def parse_spec_text(text: str, *, source: str = "the spec") -> dict[str, Any]:
    """Parse YAML or JSON text into a plain dict (validation is the caller's).

    Raises ``ValueError`` naming ``source`` (and the line, for syntax errors) when the
    text is not YAML/JSON or not a mapping."""
    import yaml  # here: importing the spec (the client, the CLI) does not need it

    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as err:
        raise ValueError(f"{source} is not valid YAML/JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{source} must contain a mapping (a study spec), not {type(data).__name__}"
        )
    return _plain(data, source)


# Far beyond any real spec; they stop a self-referencing YAML alias, and aliases that
# expand exponentially ("billion laughs"), before they cost memory.
_MAX_DEPTH = 32
_MAX_NODES = 100_000


def _plain(data: dict[Any, Any], source: str) -> dict[str, Any]:
    """``data`` as JSON data: YAML can also build non-string keys (``? x``, ``1: a``),
    dates, bytes, sets, NaN and aliases that refer to themselves, which JSON cannot carry;
    each is a ``ValueError`` naming the path."""
    nodes = 0

    def walk(value: Any, path: str, depth: int) -> Any:
        nonlocal nodes
        nodes += 1
        where = f" at {path}" if path else ""
        if depth > _MAX_DEPTH or nodes > _MAX_NODES:
            raise ValueError(f"{source} is too deeply nested or too large{where}")
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"{source} has a key that is not a string{where}: {key!r}")
                out[key] = walk(item, f"{path}.{key}" if path else key, depth + 1)
            return out
        if isinstance(value, list):
            return [walk(v, f"{path}.{i}", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{source} has a number that is not finite{where}: {value}")
        if isinstance(value, date):  # a choice read as a date (or a datetime): say so
            raise ValueError(
                f"{source} has a date{where} ({value}), which JSON cannot hold: "
                "quote it to make it a string"
            )
        if value is None or isinstance(value, (str, int, float)):
            return value
        raise ValueError(f"{source} has a {type(value).__name__} value{where}, not JSON data")

    plain: dict[str, Any] = walk(data, "", 0)
    return plain


def did_you_mean_field(loc: list[Any] | tuple[Any, ...]) -> str:
    """For an unknown key of a study spec at ``loc`` (``["body", "budget",
    "max_trails"]``), the known key it most likely meant (``"; did you mean
    'max_trials'?"``), or ""."""
    parts = [p for p in loc if p != "body"]
    model: Any = StudySpec
    for part in parts[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if hasattr(c, "model_fields")), None)
        if model is None:
            return ""
    if not parts or not hasattr(model, "model_fields"):
        return ""
    return did_you_mean(str(parts[-1]), model.model_fields)


def expand_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as every reader shows them (the API's 422, the CLI): the
    several problems one :func:`SpecFieldErrors` carries each become an error of their
    own, and an unknown key of a spec gets the key it most likely meant."""
    out: list[dict[str, Any]] = []
    for error in errors:
        error = dict(error)
        if error.get("type") == "spec_field":
            ctx = dict(error.get("ctx") or {})
            more = ctx.pop("more", [])
            error["ctx"] = {"field": ctx["field"], "message": ctx["message"]}
            out.append(error)
            out.extend(
                {"type": "spec_field", "loc": error.get("loc", ()), "msg": m["message"], "ctx": m}
                for m in more
            )
            continue
        if error.get("type") == "extra_forbidden":
            error["msg"] = str(error.get("msg", "")) + did_you_mean_field(error.get("loc", ()))
        out.append(error)
    return out
