"""Who may see and change what: an identity's role in each project, applied to studies
and trials.

The answers, the same on every route and page:

* a study (or trial, or project) of a project the caller is no member of is *not
  found* (404, with the very message a missing one gets), so other projects' study names
  are not revealed;
* what the caller may read but not change at its role is Forbidden (403, naming the
  role needed);
* admins see and do everything, and worker tokens run the trials of every project
  (``Identity.unrestricted``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.vocabulary import ROLES, Role
from server import projects, studies
from server.auth import Identity
from server.errors import Forbidden, NotFound
from server.tables import Membership, Project, Study, Trial

__all__ = [
    "RANK",
    "check_project",
    "check_study",
    "check_trial",
    "get_project",
    "get_study",
    "role_in",
    "roles_of",
    "visible_projects",
]

#: Roles by strength: a role may do what every weaker one may.
RANK: Mapping[str, int] = MappingProxyType({role: rank for rank, role in enumerate(ROLES)})


def roles_of(session: Session, identity: Identity) -> dict[int, Role]:
    """The identity's role in each project it belongs to (project id -> role)."""
    if identity.user_id is None:
        return {}
    rows = session.execute(
        select(Membership.project_id, Membership.role).where(Membership.user_id == identity.user_id)
    ).all()
    return {project_id: role for project_id, role in rows}


def role_in(session: Session, identity: Identity, project_id: int) -> Role | None:
    """The identity's role in the project (``owner`` for an unrestricted one), or None
    when it is no member."""
    if identity.unrestricted:
        return "owner"
    if identity.user_id is None:
        return None
    return session.scalar(
        select(Membership.role).where(
            Membership.user_id == identity.user_id, Membership.project_id == project_id
        )
    )


def visible_projects(session: Session, identity: Identity) -> set[int] | None:
    """The ids of the projects the identity may read; None: every project."""
    return None if identity.unrestricted else set(roles_of(session, identity))


def check_project(
    session: Session, identity: Identity, project_id: int, need: Role, *, missing: str
) -> Role:
    """The identity's role in the project when it is at least ``need``; NotFound with
    ``missing`` (the message of a missing object) when it is no member; Forbidden
    when its role is weaker."""
    role = role_in(session, identity, project_id)
    if role is None:
        raise NotFound(missing)
    if RANK[role] < RANK[need]:
        raise Forbidden(
            f"role: you are a {role} of this project; this needs the {need} role or above",
            field="role",
        )
    return role


def check_study(session: Session, identity: Identity, study: Study, need: Role) -> None:
    """Refuse ``identity`` the study unless its role in the study's project is ``need``
    or above (NotFound for a non-member, as if there were no such study)."""
    if identity.unrestricted:
        return
    check_project(
        session, identity, study.project_id, need, missing=f"no study named {study.name!r}"
    )


def get_study(session: Session, identity: Identity, name: str, need: Role = "viewer") -> Study:
    """The study named ``name`` when ``identity`` may act on it at role ``need``."""
    study = studies.get_study(session, name)
    check_study(session, identity, study, need)
    return study


def get_project(
    session: Session, identity: Identity, name: str, need: Role = "viewer"
) -> tuple[Project, Role | None]:
    """The project named ``name`` and the identity's role in it (None for an
    unrestricted identity that is no member), when that role is ``need`` or above."""
    project = projects.get_project(session, name)
    if identity.unrestricted:
        return project, roles_of(session, identity).get(project.id)
    role = check_project(session, identity, project.id, need, missing=f"no project named {name!r}")
    return project, role


def check_trial(session: Session, identity: Identity, trial_id: int, need: Role) -> None:
    """Refuse ``identity`` the trial unless its role in the trial's project is ``need``
    or above; costs nothing for workers and admins (the hot path of every report)."""
    if identity.unrestricted:
        return
    project_id = session.scalar(
        select(Study.project_id).join(Trial, Trial.study_id == Study.id).where(Trial.id == trial_id)
    )
    missing = f"no trial with id {trial_id}"
    if project_id is None:
        raise NotFound(missing)
    check_project(session, identity, project_id, need, missing=missing)
