"""The HTTP client SDK: ``hpo.Client`` talks to the server's REST API.

Workers, the CLI and user scripts all go through this one client. Errors come back as
:class:`APIError` subclasses carrying the server's message (and the field it names), so a
caller can print them without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from hpo.schemas import (
    FinishIn,
    HeartbeatIn,
    ReleaseIn,
    ReportIn,
    ReportOut,
    StudyPublic,
    TrialDetail,
    TrialPublic,
    TrialSpec,
    WorkerIn,
    WorkerPublic,
)
from hpo.settings import get_settings
from hpo.spec import StudySpec

__all__ = [
    "APIError",
    "Client",
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "ServerUnavailable",
]


class APIError(Exception):
    """The server refused a request. ``status_code`` is the HTTP status; ``message`` is
    the server's explanation, with the offending field named where there is one."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field


class InvalidRequest(APIError):
    """400/422: the request (e.g. a study spec) is invalid."""


class NotFound(APIError):
    """404."""


class Conflict(APIError):
    """409: duplicate name, superseded attempt, finished trial."""


class ServerUnavailable(APIError):
    """The server could not be reached at all."""


def _error_from(response: httpx.Response) -> APIError:
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
    cls = {404: NotFound, 409: Conflict, 400: InvalidRequest, 422: InvalidRequest}.get(
        response.status_code, APIError
    )
    return cls(response.status_code, message, field)


class Client:
    """A thin, typed client of the REST API.

    ``Client()`` reads ``HPO_SERVER_URL`` and ``HPO_TOKEN``; pass ``server_url`` /
    ``token`` to override. Use it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        server_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = get_settings()
        self.server_url = (server_url or settings.server_url).rstrip("/")
        token = token if token is not None else settings.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self._http = httpx.Client(
                base_url=f"{self.server_url}/api/v1",
                headers=headers,
                timeout=timeout or settings.http_timeout,
                transport=transport,
            )
        except (httpx.InvalidURL, ValueError) as err:
            raise InvalidRequest(0, f"invalid server URL {self.server_url!r}: {err}") from None

    # -- plumbing ----------------------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ServerUnavailable(
                0, f"cannot reach the HPO server at {self.server_url}: {err}"
            ) from None
        except (httpx.InvalidURL, httpx.HTTPError) as err:  # e.g. control characters in a name
            raise InvalidRequest(0, f"invalid request {method} {path!r}: {err}") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    # -- studies -------------------------------------------------------------------------
    def create_study(self, spec: StudySpec | Mapping[str, Any]) -> StudyPublic:
        """Submit a study spec (a dict from YAML/JSON, or a ``StudySpec``)."""
        body = spec.model_dump(mode="json") if isinstance(spec, StudySpec) else dict(spec)
        return StudyPublic.model_validate(self._request("POST", "/studies", json=body).json())

    def list_studies(self) -> list[StudyPublic]:
        return [StudyPublic.model_validate(s) for s in self._request("GET", "/studies").json()]

    def get_study(self, name: str) -> StudyPublic:
        return StudyPublic.model_validate(self._request("GET", f"/studies/{name}").json())

    def stop_study(self, name: str) -> StudyPublic:
        return StudyPublic.model_validate(self._request("POST", f"/studies/{name}/stop").json())

    def list_trials(
        self, name: str, *, status: str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[TrialPublic]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        rows = self._request("GET", f"/studies/{name}/trials", params=params).json()
        return [TrialPublic.model_validate(r) for r in rows]

    def all_trials(self, name: str, *, status: str | None = None) -> list[TrialPublic]:
        """Every trial of a study, following pages."""
        out: list[TrialPublic] = []
        while True:
            page = self.list_trials(name, status=status, limit=1000, offset=len(out))
            out.extend(page)
            if len(page) < 1000:
                return out

    def get_trial(self, name: str, number: int) -> TrialDetail:
        return TrialDetail.model_validate(
            self._request("GET", f"/studies/{name}/trials/{number}").json()
        )

    def get_trial_by_id(self, trial_id: int) -> TrialDetail:
        return TrialDetail.model_validate(self._request("GET", f"/trials/{trial_id}").json())

    def best_trial(self, name: str) -> TrialPublic | None:
        return self.get_study(name).best_trial

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerPublic]:
        rows = self._request("GET", "/workers", params={"all": include_stopped}).json()
        return [WorkerPublic.model_validate(r) for r in rows]

    # -- the worker side -------------------------------------------------------------------
    def register_worker(self, worker: WorkerIn) -> WorkerPublic:
        body = worker.model_dump(mode="json")
        return WorkerPublic.model_validate(self._request("POST", "/workers", json=body).json())

    def start_trial(self, trial_id: int, worker: str | None = None) -> TrialSpec:
        body = {"worker": worker}
        return TrialSpec.model_validate(
            self._request("POST", f"/trials/{trial_id}/start", json=body).json()
        )

    def report(self, trial_id: int, report: ReportIn) -> ReportOut:
        body = report.model_dump(mode="json")
        return ReportOut.model_validate(
            self._request("POST", f"/trials/{trial_id}/reports", json=body).json()
        )

    def heartbeat(self, trial_id: int, attempt: int) -> ReportOut:
        body = HeartbeatIn(attempt=attempt).model_dump(mode="json")
        return ReportOut.model_validate(
            self._request("POST", f"/trials/{trial_id}/heartbeat", json=body).json()
        )

    def release_trial(self, trial_id: int, release: ReleaseIn) -> TrialPublic:
        body = release.model_dump(mode="json")
        return TrialPublic.model_validate(
            self._request("POST", f"/trials/{trial_id}/release", json=body).json()
        )

    def finish_trial(self, trial_id: int, finish: FinishIn) -> TrialPublic:
        body = finish.model_dump(mode="json")
        return TrialPublic.model_validate(
            self._request("POST", f"/trials/{trial_id}/finish", json=body).json()
        )
