"""The errors ``hpo.Client`` raises: one class per kind of refusal, each carrying the
HTTP status, the server's message and the field it names (import them from
:mod:`hpo.client` or :mod:`hpo`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIError",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "ServerUnavailable",
    "Unauthorized",
    "error_from",
]


class APIError(Exception):
    """The server refused a request. ``status_code`` is the HTTP status; ``message`` is
    the server's explanation, with the offending field named where there is one."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field

    @property
    def status(self) -> int:
        """Alias of ``status_code`` (0 when no HTTP answer came back)."""
        return self.status_code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, "
            f"message={self.message!r}, field={self.field!r})"
        )


class InvalidRequest(APIError):
    """400/422: the request (e.g. a study spec) is invalid."""


class Unauthorized(APIError):
    """401: a token is required, or the one sent is unknown or revoked."""


class Forbidden(APIError):
    """403: the token's scope does not allow this request."""


class NotFound(APIError):
    """404: no such study, trial or token."""


class Conflict(APIError):
    """409: duplicate name, superseded attempt, finished trial."""


class ServerUnavailable(APIError):
    """The server could not be reached at all."""


def error_from(response: httpx.Response) -> APIError:
    """The :class:`APIError` subclass for an HTTP error response (status >= 400), with
    the server's message and the field it names (the first, for validation errors)."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text or response.reason_phrase}
    detail = body.get("detail") if isinstance(body, dict) else body
    field = body.get("field") if isinstance(body, dict) else None
    if isinstance(detail, list):  # validation errors: one line per field
        lines = [f"{d.get('field', '?')}: {d.get('msg', d)}" for d in detail if isinstance(d, dict)]
        message = "\n".join(lines) or str(detail)
        field = detail[0].get("field") if detail and isinstance(detail[0], dict) else None
    else:
        message = str(detail)
    if response.status_code == 404 and message in ("Not Found", ""):
        # No route answered at all (ours always say what is missing): the server URL is
        # not the HPO server's, or has a path that does not belong in it.
        asked = response.request.url
        message = (
            f"nothing answers at {asked.copy_with(query=None)}: is the server URL "
            "(--server, HPO_SERVER_URL) the HPO server's address, with no path after "
            "the port (e.g. http://127.0.0.1:8765)?"
        )
    cls = {
        400: InvalidRequest,
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        413: InvalidRequest,
        422: InvalidRequest,
    }.get(response.status_code, APIError)
    return cls(response.status_code, message, field)
