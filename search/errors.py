"""Errors raised by the search package.

Every error that a user can cause names the offending field with a dotted path
(``"lr.low"``, ``"space"``, ``"options.points"``) so that the server can answer a
4xx that points at the exact input to fix, instead of a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = ["FieldError", "OptionError", "SpaceError", "TakesOptions", "check_option_keys"]


class FieldError(ValueError):
    """A user input problem tied to one field.

    Contract: ``err.field`` is the dotted path of the field, ``err.message`` says
    what is wrong with it, and ``str(err) == f"{field}: {message}"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[FieldError], tuple[str, str]]:
        # ValueError would otherwise pickle with the formatted string as its only
        # argument, which does not fit our two-argument __init__.
        return (type(self), (self.field, self.message))


class SpaceError(FieldError):
    """The search space, a parameter spec or a set of parameter values is invalid."""


class OptionError(FieldError):
    """A strategy name or one of its options is invalid."""


def check_option_keys(
    options: Mapping[str, Any] | None, allowed: Sequence[str], *, field: str, kind: str
) -> dict[str, Any]:
    """``options`` as a dict, when it is a mapping whose keys are all in ``allowed``;
    else ``OptionError`` naming ``field`` (not a mapping) or ``"<field>.<key>"`` (an
    unknown option of this ``kind`` of object: "strategy", "rule"). None is no options."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise OptionError(field, "must be a mapping of option name to value")
    for key in options:
        if key not in allowed:
            hint = f"allowed: {', '.join(allowed)}" if allowed else f"this {kind} takes none"
            raise OptionError(f"{field}.{key}", f"unknown option; {hint}")
    return dict(options)


class TakesOptions:
    """What strategies and stopping rules share about their options: ``validate_options``
    (the default takes none) and the key check subclasses build on, whose errors name
    ``"<options_field>.<key>"``, the options' place in the study spec."""

    #: Where the options sit in the study spec, and what the object is called in errors.
    options_field: ClassVar[str]
    options_kind: ClassVar[str]

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return the options with defaults filled in, or raise ``OptionError``.

        The default accepts only no options (``None`` or ``{}``).
        """
        return cls._check_option_keys(options, ())

    @classmethod
    def _check_option_keys(
        cls, options: Mapping[str, Any] | None, allowed: Sequence[str]
    ) -> dict[str, Any]:
        """``options`` must be a mapping whose keys are all in ``allowed``."""
        return check_option_keys(options, allowed, field=cls.options_field, kind=cls.options_kind)
