"""What people do, as service operations: to studies (create, pause, resume, stop,
change the budget, delete) and to projects (create, change the settings, add, change
or remove members). Each checks the caller's role (``server.access``), makes the change
and records it in the audit trail (``server.audit``) in the same transaction, so tests
call them without HTTP and a refused change leaves neither a change nor an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.spec import StudySpec
from hpo.vocabulary import Role
from server import access, audit, pools, projects, studies, webhooks
from server.auth import Identity
from server.errors import Forbidden, Invalid
from server.projects import check_entrypoint, project_for_spec
from server.tables import Membership, Project, Study, Webhook
from server.users import find_user

__all__ = [
    "add_webhook",
    "change_budget",
    "change_project",
    "change_status",
    "create_project",
    "create_study",
    "delete_study",
    "remove_member",
    "remove_webhook",
    "set_member",
]


def create_study(
    session: Session,
    identity: Identity,
    spec: StudySpec,
    *,
    check_entrypoints: bool,
    local_only: bool = False,
    heartbeat_timeout: float = 60.0,
) -> Study:
    """Create a study in the spec's project (default: the default project) for a
    member or owner of it. A project the caller is no member of reads as missing (422
    naming ``project``, as for a project that does not exist); a viewer is Forbidden;
    an entrypoint the project may not run is 422 naming ``train.entrypoint``; trials
    no worker of its pool could run are 422 naming the resource (``server.pools``)."""
    project = project_for_spec(session, spec.project)
    role = access.role_in(session, identity, project.id)
    if role is None:
        raise Invalid(f"project: no project named {project.name!r}", field="project")
    if access.RANK[role] < access.RANK["member"]:
        raise Forbidden(
            f"project: you are a {role} of project {project.name!r}; creating a study "
            "needs the member role or above",
            field="project",
        )
    if check_entrypoints:
        check_entrypoint(project, spec.train.entrypoint)
    if spec.runner == "workers":
        pools.check_resources(
            session, spec.resources, local_only=local_only, heartbeat_timeout=heartbeat_timeout
        )
    study = studies.create_study(session, spec, project_id=project.id, created_by=identity.name)
    audit.record(session, identity, "study.create", project_id=project.id, study=study.name)
    return study


def change_status(session: Session, identity: Identity, name: str, action: str) -> Study:
    """Pause, resume or stop (``action``, a key of ``studies.TRANSITIONS``) for a
    member or owner of the study's project."""
    study = access.get_study(session, identity, name, need="member")
    before = study.status
    study = studies.change_status(session, study, action)
    if study.status != before:
        audit.record(session, identity, f"study.{action}", project_id=study.project_id, study=name)
        if study.status == "stopped":
            webhooks.emit(session, study, "study.stopped")
    return study


def change_budget(
    session: Session,
    identity: Identity,
    name: str,
    *,
    max_trials: int | None,
    max_parallel: int | None,
) -> Study:
    """Change the budget for a member or owner; the event keeps old and new values."""
    study = access.get_study(session, identity, name, need="member")
    old = {"max_trials": study.max_trials, "max_parallel": study.max_parallel}
    study = studies.update_study(session, study, max_trials=max_trials, max_parallel=max_parallel)
    new = {"max_trials": study.max_trials, "max_parallel": study.max_parallel}
    changed = {key: [old[key], new[key]] for key in old if old[key] != new[key]}
    if changed:
        audit.record(
            session, identity, "study.budget", project_id=study.project_id, study=name, **changed
        )
    return study


def delete_study(session: Session, identity: Identity, name: str) -> None:
    """Delete a study with its trials for a member or owner; the event stays."""
    study = access.get_study(session, identity, name, need="member")
    project_id = study.project_id
    trials = sum(studies.status_counts(session, study).values())
    studies.delete_study(session, study)
    audit.record(
        session, identity, "study.delete", project_id=project_id, study=name, trials=trials
    )


def create_project(
    session: Session,
    identity: Identity,
    name: str,
    *,
    description: str = "",
    entrypoints: Sequence[str] = (),
    gpu_quota: float | None = None,
) -> Project:
    """Create a project (admins only: its allowlist says what code the fleet runs)."""
    if "admin" not in identity.scopes:
        raise Forbidden("creating a project needs an admin token")
    project = projects.create_project(
        session, name, description=description, entrypoints=entrypoints, gpu_quota=gpu_quota
    )
    audit.record(
        session,
        identity,
        "project.create",
        project_id=project.id,
        entrypoints=list(project.entrypoints),
    )
    return project


class Keep:
    """ "Leave this setting as it is" (where ``None`` means something: no quota)."""


KEEP = Keep()


def change_project(
    session: Session,
    identity: Identity,
    name: str,
    *,
    description: str | None = None,
    entrypoints: Sequence[str] | None = None,
    gpu_quota: float | Keep | None = KEEP,
) -> Project:
    """Change a project's description or entrypoint allowlist (owner or admin), or
    its GPU quota (admin only: a quota caps the project; ``None`` lifts it)."""
    project, _ = access.get_project(session, identity, name, need="owner")
    old = list(project.entrypoints)
    projects.update_project(session, project, description=description, entrypoints=entrypoints)
    detail: dict[str, Any] = {}
    if not isinstance(gpu_quota, Keep):
        if "admin" not in identity.scopes:
            raise Forbidden("gpu_quota: changing a project's quota needs an admin token")
        if gpu_quota != project.gpu_quota:
            detail["gpu_quota"] = [project.gpu_quota, gpu_quota]
        project.gpu_quota = gpu_quota
    if entrypoints is not None and list(project.entrypoints) != old:
        detail["entrypoints"] = [old, list(project.entrypoints)]
    if description is not None:
        detail["description"] = True
    if detail:
        audit.record(session, identity, "project.update", project_id=project.id, **detail)
    return project


def set_member(
    session: Session, identity: Identity, name: str, user: str, role: Role
) -> tuple[Project, Membership]:
    """Add ``user`` to the project with ``role``, or change their role (owner or admin)."""
    project, _ = access.get_project(session, identity, name, need="owner")
    before = session.get(Membership, _key(session, project, user))
    old_role = before.role if before is not None else None
    membership = projects.add_member(session, project, user, role)
    if old_role != role:
        action = "member.add" if old_role is None else "member.role"
        audit.record(
            session, identity, action, project_id=project.id, user=user, role=role, was=old_role
        )
    return project, membership


def remove_member(session: Session, identity: Identity, name: str, user: str) -> None:
    """Remove ``user`` from the project (owner or admin)."""
    project, _ = access.get_project(session, identity, name, need="owner")
    role = projects.remove_member(session, project, user)
    audit.record(session, identity, "member.remove", project_id=project.id, user=user, was=role)


def _key(session: Session, project: Project, user: str) -> tuple[int, int]:
    return project.id, find_user(session, user).id


def add_webhook(
    session: Session,
    identity: Identity,
    name: str,
    url: str,
    events: list[str],
    study: str | None = None,
) -> Webhook:
    """Add a hook to the project (owner or admin); ``study`` must be one of its own
    (422 naming ``study`` otherwise, as for a study that does not exist)."""
    project, _ = access.get_project(session, identity, name, need="owner")
    if study is not None:
        found = session.scalar(select(Study.project_id).where(Study.name == study))
        if found != project.id:
            raise Invalid(f"study: project {name!r} has no study named {study!r}", field="study")
    hook = webhooks.create_webhook(
        session, project.id, url, events, study=study, created_by=identity.name
    )
    audit.record(
        session,
        identity,
        "webhook.add",
        project_id=project.id,
        study=study,
        url=url,
        events=list(hook.events),
    )
    return hook


def remove_webhook(session: Session, identity: Identity, name: str, hook_id: int) -> None:
    """Remove a hook and its delivery log (owner or admin)."""
    project, _ = access.get_project(session, identity, name, need="owner")
    hook = webhooks.delete_webhook(session, project.id, hook_id)
    audit.record(
        session, identity, "webhook.remove", project_id=project.id, study=hook.study, url=hook.url
    )
