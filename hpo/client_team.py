"""The SDK's calls for a team's service: projects, members, the audit trail.

Mixed into :class:`hpo.client.Client` (``client.create_project(...)``), kept apart so
the client module stays one concern a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hpo.vocabulary import Role

if TYPE_CHECKING:
    import httpx

    from hpo.team import EventPublic, MemberPublic, ProjectPublic

__all__ = ["TeamCalls", "path_segment"]


def path_segment(segment: str) -> str:
    """A name as one URL path segment (a ``/`` in it cannot reach another route)."""
    return quote(str(segment), safe="")


_q = path_segment


class TeamCalls:
    """Project, member and audit-trail calls (needs ``_request`` of the client)."""

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    def create_project(
        self, name: str, *, description: str = "", entrypoints: Sequence[str] = ()
    ) -> ProjectPublic:
        """Create a project (admin token). ``entrypoints``: the module prefixes its
        studies' ``train.entrypoint`` may come from (``"*"``: any)."""
        from hpo.team import ProjectPublic

        body = {"name": name, "description": description, "entrypoints": list(entrypoints)}
        return ProjectPublic.model_validate(self._request("POST", "/projects", json=body).json())

    def list_projects(self) -> list[ProjectPublic]:
        """The projects you belong to, with your role (admin: every project)."""
        from hpo.team import ProjectPublic

        return [ProjectPublic.model_validate(p) for p in self._request("GET", "/projects").json()]

    def get_project(self, name: str) -> ProjectPublic:
        from hpo.team import ProjectPublic

        return ProjectPublic.model_validate(self._request("GET", f"/projects/{_q(name)}").json())

    def update_project(
        self,
        name: str,
        *,
        description: str | None = None,
        entrypoints: Sequence[str] | None = None,
        gpu_quota: float | None = None,
        clear_gpu_quota: bool = False,
    ) -> ProjectPublic:
        """Change the description or the entrypoint allowlist (owner or admin), or
        the GPU quota (admin): ``gpu_quota`` sets it, ``clear_gpu_quota`` lifts it."""
        from hpo.team import ProjectPublic

        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if entrypoints is not None:
            body["entrypoints"] = list(entrypoints)
        if gpu_quota is not None or clear_gpu_quota:
            body["gpu_quota"] = None if clear_gpu_quota else gpu_quota
        answer = self._request("PATCH", f"/projects/{_q(name)}", json=body)
        return ProjectPublic.model_validate(answer.json())

    def list_members(self, name: str) -> list[MemberPublic]:
        from hpo.team import MemberPublic

        rows = self._request("GET", f"/projects/{_q(name)}/members").json()
        return [MemberPublic.model_validate(m) for m in rows]

    def add_member(self, name: str, user: str, role: Role = "member") -> MemberPublic:
        """Add ``user`` with ``role``, or change a member's role (owner or admin)."""
        from hpo.team import MemberPublic

        body = {"user": user, "role": role}
        answer = self._request("POST", f"/projects/{_q(name)}/members", json=body)
        return MemberPublic.model_validate(answer.json())

    def remove_member(self, name: str, user: str) -> None:
        self._request("DELETE", f"/projects/{_q(name)}/members/{_q(user)}")

    def list_events(
        self,
        *,
        project: str | None = None,
        study: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[EventPublic]:
        """The audit trail, newest first: of one project, one study, or all yours."""
        from hpo.team import EventPublic

        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        if study is not None:
            params["study"] = study
        path = f"/projects/{_q(project)}/events" if project else "/events"
        return [
            EventPublic.model_validate(e) for e in self._request("GET", path, params=params).json()
        ]
