"""Domain errors raised by server logic and mapped to HTTP answers in one place
(``server.app``), so queries never build HTTP responses themselves."""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "ServiceError"]


class ServiceError(Exception):
    """Base: ``status_code`` is the HTTP status, ``field`` names the input at fault."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    """The caller may read this but not do that (a viewer stopping a study); what the
    caller may not even read is NotFound instead, so its existence is not revealed."""

    status_code = 403


class Conflict(ServiceError):
    """The request is valid but contradicts stored state (duplicate name, a superseded
    attempt, a finished trial)."""

    status_code = 409


class Invalid(ServiceError):
    """The input is well-formed but not acceptable against stored state (e.g. a budget
    below the trials already created); ``field`` names it."""

    status_code = 422
