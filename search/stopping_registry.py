"""The table of stopping rules by name, and the one place they are built.

Adding a stopping rule is one module (a ``search.stopping.StoppingRule`` subclass) plus
one line in ``STOPPING_RULES``: the study spec accepts its name and options without an
edit (``hpo.spec.StoppingSpec`` validates through ``validate_stopping_rule``), the server
asks it at report time, and the shared contract tests in
``tests/search/test_stopping_contract.py`` cover it automatically. Light: the standard
library only, so the client may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search.errors import OptionError
from search.median import MedianRule
from search.stopping import StoppingRule

__all__ = [
    "STOPPING_RULES",
    "get_stopping_rule",
    "make_stopping_rule",
    "stopping_rule_names",
    "validate_stopping_rule",
]

STOPPING_RULES: dict[str, type[StoppingRule]] = {
    MedianRule.name: MedianRule,
}


def stopping_rule_names() -> list[str]:
    """Known stopping rule names, sorted."""
    return sorted(STOPPING_RULES)


def get_stopping_rule(name: str) -> type[StoppingRule]:
    """The rule class called ``name``; ``OptionError("stopping.rule")`` if unknown."""
    cls = STOPPING_RULES.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(stopping_rule_names())
        raise OptionError("stopping.rule", f"unknown stopping rule {name!r}; known: {known}")
    return cls


def make_stopping_rule(name: str, options: Mapping[str, Any] | None = None) -> StoppingRule:
    """Build rule ``name`` from its ``options`` (``OptionError`` naming the field)."""
    return get_stopping_rule(name)(options)


def validate_stopping_rule(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a study's ``stopping:`` block before anything is stored: the options with
    defaults filled in, or ``OptionError`` naming ``"stopping.rule"`` or
    ``"stopping.<key>"``."""
    return get_stopping_rule(name).validate_options(options)
