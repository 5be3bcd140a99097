"""Projects: who belongs with which role, and which code their studies may run.

A study belongs to one project (``studies.project_id``); its members see and change its
studies by role (``server.access``). Creating a project is an admin's act; its owners
then manage its members and settings. ``entrypoints`` lists the module prefixes a
study's ``train.entrypoint`` may name: the fleet runs that code, so who may run what is
the project's decision, not each user's. The built-in models are always allowed, and a
server with auth off (one person) allows everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpo.spec import NAME_PATTERN
from hpo.vocabulary import DEFAULT_PROJECT, Role
from server.errors import Conflict, Invalid, NotFound
from server.tables import Membership, Project, Study, User
from server.users import find_user

__all__ = [
    "ANY_ENTRYPOINT",
    "add_member",
    "check_entrypoint",
    "create_project",
    "entrypoint_allowed",
    "get_project",
    "list_members",
    "list_projects",
    "project_for_spec",
    "remove_member",
    "study_counts",
    "update_project",
]

#: An allowlist entry that admits every entrypoint.
ANY_ENTRYPOINT = "*"
_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))


def create_project(
    session: Session,
    name: str,
    *,
    description: str = "",
    entrypoints: Sequence[str] = (),
    gpu_quota: float | None = None,
) -> Project:
    """Store a new project; a duplicate name is a Conflict naming ``name``."""
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"name: a project named {name!r} already exists", field="name")
    project = Project(
        name=name,
        description=description,
        entrypoints=sorted(set(entrypoints)),
        gpu_quota=gpu_quota,
    )
    session.add(project)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create won the race for the name
        raise Conflict(f"name: a project named {name!r} already exists", field="name") from None
    return project


def get_project(session: Session, name: str) -> Project:
    """The project named ``name``; NotFound when there is none."""
    if _NAME.fullmatch(name) is None:
        raise NotFound(f"no project named {name!r}")
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project


def list_projects(session: Session, visible: set[int] | None = None) -> list[Project]:
    """Projects by name: those whose ids are ``visible`` (None: every one)."""
    query = select(Project).order_by(Project.name)
    if visible is not None:
        query = query.where(Project.id.in_(visible))
    return list(session.scalars(query).all())


def study_counts(session: Session, project_ids: Iterable[int]) -> dict[int, int]:
    """How many studies each project has (projects without any left out)."""
    ids = list(project_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Study.project_id, func.count())
        .where(Study.project_id.in_(ids))
        .group_by(Study.project_id)
    ).all()
    return {project_id: count for project_id, count in rows}


def update_project(
    session: Session,
    project: Project,
    *,
    description: str | None = None,
    entrypoints: Sequence[str] | None = None,
) -> Project:
    """Change a project's description or entrypoint allowlist (studies already created
    keep running: the list is checked when a study is created)."""
    if description is not None:
        project.description = description
    if entrypoints is not None:
        project.entrypoints = sorted(set(entrypoints))
    return project


def list_members(session: Session, project: Project) -> list[tuple[str, Role, Membership]]:
    """The project's members as (user name, role, membership), by name."""
    rows = session.execute(
        select(User.name, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project.id)
        .order_by(User.name)
    ).all()
    return [(name, membership.role, membership) for name, membership in rows]


def add_member(session: Session, project: Project, user_name: str, role: Role) -> Membership:
    """Make ``user_name`` a member with ``role`` (a member already has their role
    changed). Invalid naming ``user`` when there is no such user; demoting the last
    owner is a Conflict."""
    user = find_user(session, user_name)
    membership = session.get(Membership, (project.id, user.id))
    if membership is None:
        membership = Membership(project_id=project.id, user_id=user.id, role=role)
        session.add(membership)
    else:
        if membership.role == "owner" and role != "owner":
            _keep_an_owner(session, project, user_name)
        membership.role = role
    session.flush()
    return membership


def remove_member(session: Session, project: Project, user_name: str) -> Role:
    """Remove ``user_name`` from the project; returns the role they had. NotFound when
    they are no member; removing the last owner is a Conflict."""
    user = find_user(session, user_name)
    membership = session.get(Membership, (project.id, user.id))
    if membership is None:
        raise NotFound(f"{user_name!r} is no member of project {project.name!r}")
    role = membership.role
    if role == "owner":
        _keep_an_owner(session, project, user_name)
    session.execute(
        delete(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
    )
    return role


def _keep_an_owner(session: Session, project: Project, user_name: str) -> None:
    owners = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.project_id == project.id, Membership.role == "owner")
    )
    if (owners or 0) <= 1:
        raise Conflict(
            f"{user_name!r} is the last owner of project {project.name!r}: make another "
            "member owner first"
        )


def entrypoint_allowed(project: Project, entrypoint: str | None) -> bool:
    """Whether the project's studies may run ``entrypoint`` (``package.module:fn``):
    its module is a listed prefix or inside one (``team`` admits ``team.train:fit``);
    no entrypoint (a built-in model) always is."""
    if entrypoint is None:
        return True
    module = entrypoint.partition(":")[0]
    return any(
        prefix == ANY_ENTRYPOINT or module == prefix or module.startswith(prefix + ".")
        for prefix in project.entrypoints
    )


def project_for_spec(session: Session, name: str | None) -> Project:
    """The project a new study joins: ``name``, or the default project; Invalid naming
    ``project`` when there is no such project."""
    wanted = name or DEFAULT_PROJECT
    project = session.scalar(select(Project).where(Project.name == wanted))
    if project is None:
        raise Invalid(f"project: no project named {wanted!r}", field="project")
    return project


def check_entrypoint(project: Project, entrypoint: str | None) -> None:
    """Invalid naming ``train.entrypoint`` when the project may not run it."""
    if not entrypoint_allowed(project, entrypoint):
        allowed = ", ".join(project.entrypoints) or "none"
        raise Invalid(
            f"train.entrypoint: project {project.name!r} may not run {entrypoint!r} (the "
            f"module prefixes it may run: {allowed}; an owner or admin sets them with "
            f"hpo project set {project.name} --entrypoints ...)",
            field="train.entrypoint",
        )
