"""The HTTP client SDK: ``hpo.Client`` talks to the server's REST API.

Workers, the CLI and user scripts all go through this one client. Errors come back as
:class:`APIError` subclasses carrying the HTTP status, the server's message and the field
it names, so a caller can print them without a traceback::

    from hpo import Client

    with Client("http://hpo.internal:8765", token="hpo_...") as client:
        client.create_study(spec)                 # a dict from YAML/JSON, or a StudySpec
        best = client.best_trial("digits-mlp")    # TrialPublic | None
        rows = client.trials_records("digits-mlp")  # flat dicts, see hpo.export
        frame = client.trials_dataframe("digits-mlp")  # needs pandas

Light: importing it loads pydantic and the spec, not httpx or the settings (read when a
client is built), and none of scipy, scikit-learn, scikit-optimize, torch, pandas or the
server (``tests/hpo/test_light_imports.py``; ``python -m benchmarks.import_time``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from hpo.client_logs import LogCalls
from hpo.client_team import TeamCalls, path_segment
from hpo.errors import (
    APIError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerUnavailable,
    Unauthorized,
    error_from,
)
from hpo.schemas import (
    FinishIn,
    FinishOut,
    HeartbeatIn,
    ReleaseIn,
    ReportIn,
    ReportOut,
    StudyPublic,
    TrialDetail,
    TrialPublic,
    TrialSpec,
    TrialStatus,
    WorkerIn,
    WorkerPublic,
)
from hpo.spec import StudySpec
from hpo.vocabulary import PAGE_SIZE, TokenScope, TrialSortKey

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIError",
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "ServerUnavailable",
    "TokenScope",
    "TrialPage",
    "Unauthorized",
]


_q = path_segment


class TrialPage(NamedTuple):
    """One page of a study's trials, how many match the filter in all, and the cursor
    of the next page (None: the last page, or a server without cursor paging)."""

    trials: list[TrialPublic]
    total: int
    next_cursor: str | None = None


class Client(TeamCalls, LogCalls):
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
        # Here, not at the top: httpx and reading the environment (pydantic-settings)
        # cost more than the rest of ``from hpo import Client`` (and `hpo --help`, which
        # builds no client) together.
        import httpx

        from hpo.settings import get_settings

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
        import httpx  # loaded by __init__ already: a lookup

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ServerUnavailable(
                0, f"cannot reach the HPO server at {self.server_url}: {err}"
            ) from None
        except (httpx.InvalidURL, httpx.HTTPError) as err:  # e.g. control characters in a name
            raise InvalidRequest(0, f"invalid request {method} {path!r}: {err}") from None
        if response.status_code >= 400:
            raise error_from(response)
        return response

    # -- studies -------------------------------------------------------------------------
    def create_study(self, spec: StudySpec | Mapping[str, Any]) -> StudyPublic:
        """Submit a study spec (a dict from YAML/JSON, or a ``StudySpec``).

        Raises :class:`InvalidRequest` naming the bad field, :class:`Conflict` when the
        name is taken."""
        body = spec.model_dump(mode="json") if isinstance(spec, StudySpec) else dict(spec)
        return StudyPublic.model_validate(self._request("POST", "/studies", json=body).json())

    def list_studies(self, project: str | None = None) -> list[StudyPublic]:
        """Every study you may read (of one ``project``), with its progress and best."""
        params = {"project": project} if project else {}
        rows = self._request("GET", "/studies", params=params).json()
        return [StudyPublic.model_validate(s) for s in rows]

    def get_study(self, name: str) -> StudyPublic:
        """One study; :class:`NotFound` when there is none of that name."""
        return StudyPublic.model_validate(self._request("GET", f"/studies/{_q(name)}").json())

    def _control(self, name: str, action: str) -> StudyPublic:
        path = f"/studies/{_q(name)}/{action}"
        return StudyPublic.model_validate(self._request("POST", path).json())

    def stop_study(self, name: str) -> StudyPublic:
        """Stop a study for good: queued trials are stopped, running ones told to stop."""
        return self._control(name, "stop")

    def pause_study(self, name: str) -> StudyPublic:
        """Pause a running study: no new trials; queued and running ones finish.
        Idempotent; :class:`Conflict` when the study is completed or stopped."""
        return self._control(name, "pause")

    def resume_study(self, name: str) -> StudyPublic:
        """Resume a paused study. :class:`Conflict` when it is completed or stopped."""
        return self._control(name, "resume")

    def update_study(
        self, name: str, *, max_trials: int | None = None, max_parallel: int | None = None
    ) -> StudyPublic:
        """Change a study's budget; None leaves a value as it is. Raising ``max_trials``
        of a completed study runs it again; :class:`InvalidRequest` (field
        ``max_trials``) when it is below the trials already created."""
        body = {
            k: v
            for k, v in (("max_trials", max_trials), ("max_parallel", max_parallel))
            if v is not None
        }
        return StudyPublic.model_validate(
            self._request("PATCH", f"/studies/{_q(name)}", json=body).json()
        )

    def delete_study(self, name: str) -> None:
        """Delete a study with its trials and reports, for good."""
        self._request("DELETE", f"/studies/{_q(name)}")

    def suggest(self, name: str, count: int = 1) -> list[TrialSpec]:
        """Ask/tell: lease ``count`` (1..100) trials of the study to run yourself; the
        study must have been created with ``runner: external`` (else :class:`Conflict`
        naming ``runner``: its trials go to workers), and no worker ever runs them.

        Each :class:`TrialSpec` has the trial id and attempt to report with
        (:meth:`report`, :meth:`heartbeat` every ``heartbeat_interval`` seconds,
        then :meth:`finish_trial`)."""
        rows = self._request("POST", f"/studies/{_q(name)}/suggest", params={"count": count}).json()
        return [TrialSpec.model_validate(r) for r in rows]

    # -- trials ------------------------------------------------------------------------------
    def trials_page(
        self,
        name: str,
        *,
        status: TrialStatus | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: TrialSortKey = "number",
        order: Literal["asc", "desc"] = "asc",
        cursor: str | None = None,
        metrics: bool = False,
    ) -> TrialPage:
        """One page (``limit`` at most 1000) of trials sorted by ``sort`` then number
        (nulls last), and the number of trials matching ``status`` in all. The page
        starts at ``offset``, or right after the page whose ``next_cursor`` ``cursor``
        is (same ``status``, ``sort`` and ``order``; as fast deep in a large study as
        at its start)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset, "sort": sort, "order": order}
        if status:
            params["status"] = status
        if cursor is not None:
            params["cursor"] = cursor
        if metrics:
            params["metrics"] = True
        response = self._request("GET", f"/studies/{_q(name)}/trials", params=params)
        trials = [TrialPublic.model_validate(r) for r in response.json()]
        total = int(response.headers.get("x-total-count", offset + len(trials)))
        return TrialPage(trials, total, response.headers.get("x-next-cursor"))

    def list_trials(
        self,
        name: str,
        *,
        status: TrialStatus | None = None,
        limit: int = PAGE_SIZE,
        offset: int = 0,
        sort: TrialSortKey = "number",
        order: Literal["asc", "desc"] = "asc",
    ) -> list[TrialPublic]:
        """One page of trials (see :meth:`trials_page`; :meth:`all_trials` for all)."""
        return self.trials_page(
            name, status=status, limit=limit, offset=offset, sort=sort, order=order
        ).trials

    def all_trials(
        self,
        name: str,
        *,
        status: TrialStatus | None = None,
        sort: TrialSortKey = "number",
        order: Literal["asc", "desc"] = "asc",
        limit: int | None = None,
        metrics: bool = False,
    ) -> list[TrialPublic]:
        """Every trial of a study (or the first ``limit``), following the pages'
        cursors (offsets with a server that gives none); with ``metrics``, each with its
        last reported metrics."""
        out: list[TrialPublic] = []
        cursor: str | None = None
        while limit is None or len(out) < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(out))
            page = self.trials_page(
                name,
                status=status,
                limit=size,
                offset=0 if cursor else len(out),
                sort=sort,
                order=order,
                cursor=cursor,
                metrics=metrics,
            )
            out.extend(page.trials)
            if len(page.trials) < size:
                break
            cursor = page.next_cursor
        return out

    def get_trial(self, name: str, number: int) -> TrialDetail:
        """One trial by its number in the study, with its reports (learning curve)."""
        return TrialDetail.model_validate(
            self._request("GET", f"/studies/{_q(name)}/trials/{int(number)}").json()
        )

    def get_trial_by_id(self, trial_id: int) -> TrialDetail:
        return TrialDetail.model_validate(self._request("GET", f"/trials/{int(trial_id)}").json())

    def best_trial(self, name: str) -> TrialPublic | None:
        """The study's best completed trial by its objective, or None."""
        return self.get_study(name).best_trial

    def trials_records(
        self, name: str, *, status: TrialStatus | None = None
    ) -> list[dict[str, Any]]:
        """Every trial as a flat dict, in number order: ``number, status, value, attempt,
        failures, worker, created_at, started_at, finished_at, duration_s, last_step,
        error`` then one ``param_<name>`` column per parameter and one ``metric_<name>``
        column per reported metric (layout: :mod:`hpo.export`). Datetimes are UTC
        ``datetime`` objects."""
        from hpo.export import trial_records

        study = self.get_study(name)
        return trial_records(self.all_trials(name, status=status, metrics=True), study)

    def trials_dataframe(self, name: str, *, status: TrialStatus | None = None) -> Any:
        """:meth:`trials_records` as a pandas ``DataFrame`` (one row per trial).

        pandas is optional: raises :class:`hpo.export.MissingDependency` (an
        ``ImportError``) saying how to install it when it is missing."""
        from hpo.export import records_dataframe

        return records_dataframe(self.trials_records(name, status=status))

    def export_tensorboard(self, name: str, logdir: str | Path) -> list[Path]:
        """Write TensorBoard HParams logs of the study's completed trials to ``logdir``
        (see :func:`hpo.export.write_tensorboard`); returns the run directories.
        Needs the optional package tensorboardX. One request per completed trial."""
        from hpo.export import _require, write_tensorboard

        _require("tensorboardX", "tensorboardX", "the TensorBoard export")  # fail early
        study = self.get_study(name)
        done = self.all_trials(name, status="completed")
        details = [self.get_trial(name, t.number) for t in done]
        return write_tensorboard(study, details, logdir)

    # -- workers and tokens -------------------------------------------------------------------
    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerPublic]:
        """Registered workers (stopped ones too with ``include_stopped``)."""
        rows = self._request("GET", "/workers", params={"all": include_stopped}).json()
        return [WorkerPublic.model_validate(r) for r in rows]

    def create_token(
        self, name: str, scope: TokenScope = "user", user: str | None = None
    ) -> dict[str, Any]:
        """Create an API token (admin scope needed) for ``user`` (default: a user named
        like the token). Returns ``{"name", "scope", "user", "token", "created_at"}``:
        ``token`` is the secret, shown this once and never again."""
        body: dict[str, Any] = {"name": name, "scope": scope}
        if user is not None:
            body["user"] = user
        return dict(self._request("POST", "/tokens", json=body).json())

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token as ``{"name", "scope", "created_at", "last_used_at"}`` (never the
        secret)."""
        return list(self._request("GET", "/tokens").json())

    def delete_token(self, name: str) -> None:
        """Revoke a token at once; :class:`NotFound` when there is none of that name."""
        self._request("DELETE", f"/tokens/{_q(name)}")

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

    def report_many(self, trial_id: int, reports: list[ReportIn]) -> ReportOut:
        """Several reports of one attempt in one request (in order)."""
        body = {"reports": [r.model_dump(mode="json") for r in reports]}
        return ReportOut.model_validate(
            self._request("POST", f"/trials/{trial_id}/reports/batch", json=body).json()
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

    def finish_trial(self, trial_id: int, finish: FinishIn) -> FinishOut:
        """End the attempt; with ``finish.lease_next`` the answer's ``next_trial`` may
        hold the study's next trial, already started for this worker."""
        body = finish.model_dump(mode="json")
        return FinishOut.model_validate(
            self._request("POST", f"/trials/{trial_id}/finish", json=body).json()
        )
