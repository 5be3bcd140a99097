"""The SDK's calls for trial logs: a worker ships chunks, anyone who may read the study
reads them (``client.trial_log(...)``, ``hpo trial logs``). Mixed into
:class:`hpo.client.Client`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.client_team import path_segment

if TYPE_CHECKING:
    import httpx

    from hpo.logs import LogAck, LogChunkIn, TrialLog

__all__ = ["LogCalls"]


class LogCalls:
    """Trial-log calls (needs ``_request`` of the client)."""

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    def send_log(self, trial_id: int, chunk: LogChunkIn) -> LogAck:
        """Ship a chunk of an attempt's output (what workers do)."""
        from hpo.logs import LogAck

        body = chunk.model_dump(mode="json")
        return LogAck.model_validate(
            self._request("POST", f"/trials/{trial_id}/logs", json=body).json()
        )

    def trial_log(
        self, study: str, number: int, *, attempt: int | None = None, after: int = 0
    ) -> TrialLog:
        """What an attempt of trial ``number`` printed (default: its latest attempt with
        a log), from byte ``after`` on; follow it by passing ``next_position`` back."""
        from hpo.logs import TrialLog

        params: dict[str, Any] = {"after": after}
        if attempt is not None:
            params["attempt"] = attempt
        path = f"/studies/{path_segment(study)}/trials/{number}/logs"
        return TrialLog.model_validate(self._request("GET", path, params=params).json())
