"""Project routes: projects (created by an admin), their members and settings (owners),
and the audit trail. A project you are no member of is not found (404); what your role
may read but not change is 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.orm import Session

from hpo.team import (
    DeliveryPublic,
    EventPublic,
    MemberIn,
    MemberPublic,
    ProjectIn,
    ProjectPublic,
    ProjectUpdate,
    WebhookCreated,
    WebhookIn,
    WebhookPublic,
)
from hpo.vocabulary import Role
from server import access, actions, audit, projects, webhooks
from server.api.deps import MAX_ID, SessionDep
from server.auth import Identity, IdentityDep, require
from server.tables import Project, Webhook

router = APIRouter(prefix="/projects", tags=["projects"], dependencies=[Depends(require("user"))])
events = APIRouter(prefix="/events", tags=["projects"], dependencies=[Depends(require("user"))])

Limit = Annotated[int, Query(ge=1, le=1000, description="Most events returned.")]
Before = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="Only events older than this event id.")
]


def _public(session: Session, project: Project, role: Role | None) -> ProjectPublic:
    return ProjectPublic(
        name=project.name,
        description=project.description,
        entrypoints=list(project.entrypoints),
        gpu_quota=project.gpu_quota,
        role=role,
        n_studies=projects.study_counts(session, [project.id]).get(project.id, 0),
        created_at=project.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic)
def create_project(body: ProjectIn, session: SessionDep, identity: IdentityDep) -> ProjectPublic:
    """Create a project (admin). 409 on a duplicate name."""
    project = actions.create_project(
        session,
        identity,
        body.name,
        description=body.description,
        entrypoints=body.entrypoints,
        gpu_quota=body.gpu_quota,
    )
    out = _public(session, project, None)
    session.commit()
    return out


@router.get("", response_model=list[ProjectPublic])
def list_projects(session: SessionDep, identity: IdentityDep) -> list[ProjectPublic]:
    """The projects you belong to, with your role (admin: every project)."""
    roles = access.roles_of(session, identity)
    visible = None if identity.unrestricted else set(roles)
    found = projects.list_projects(session, visible)
    counts = projects.study_counts(session, [p.id for p in found])
    return [
        _public(session, p, roles.get(p.id)).model_copy(update={"n_studies": counts.get(p.id, 0)})
        for p in found
    ]


@router.get("/{name}", response_model=ProjectPublic)
def get_project(name: str, session: SessionDep, identity: IdentityDep) -> ProjectPublic:
    project, role = access.get_project(session, identity, name)
    return _public(session, project, role)


@router.patch("/{name}", response_model=ProjectPublic)
def update_project(
    name: str, body: ProjectUpdate, session: SessionDep, identity: IdentityDep
) -> ProjectPublic:
    """Change the description or the entrypoint allowlist (owner or admin), or the
    GPU quota (admin; ``null`` lifts it)."""
    quota = body.gpu_quota if "gpu_quota" in body.model_fields_set else actions.KEEP
    project = actions.change_project(
        session,
        identity,
        name,
        description=body.description,
        entrypoints=body.entrypoints,
        gpu_quota=quota,
    )
    out = _public(session, project, access.roles_of(session, identity).get(project.id))
    session.commit()
    return out


@router.get("/{name}/members", response_model=list[MemberPublic])
def list_members(name: str, session: SessionDep, identity: IdentityDep) -> list[MemberPublic]:
    project, _ = access.get_project(session, identity, name)
    return [
        MemberPublic(user=user, role=role, created_at=m.created_at)
        for user, role, m in projects.list_members(session, project)
    ]


@router.post("/{name}/members", response_model=MemberPublic)
def set_member(
    name: str, body: MemberIn, session: SessionDep, identity: IdentityDep
) -> MemberPublic:
    """Add a user with a role, or change a member's role (owner or admin). 422 naming
    ``user`` when there is no such user; 409 when it would leave no owner."""
    _, membership = actions.set_member(session, identity, name, body.user, body.role)
    out = MemberPublic(user=body.user, role=membership.role, created_at=membership.created_at)
    session.commit()
    return out


@router.delete("/{name}/members/{user}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(name: str, user: str, session: SessionDep, identity: IdentityDep) -> Response:
    """Remove a member (owner or admin); 409 for the last owner."""
    actions.remove_member(session, identity, name, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/events", response_model=list[EventPublic])
def project_events(
    name: str,
    session: SessionDep,
    identity: IdentityDep,
    limit: Limit = 100,
    before: Before = None,
) -> list[EventPublic]:
    """The project's audit trail, newest first."""
    project, _ = access.get_project(session, identity, name)
    return _events(session, identity, project_id=project.id, limit=limit, before=before)


@events.get("", response_model=list[EventPublic])
def list_events(
    session: SessionDep,
    identity: IdentityDep,
    study: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Limit = 100,
    before: Before = None,
) -> list[EventPublic]:
    """The audit trail of every project you belong to (admin: all), newest first;
    ``study`` narrows it to one study's events (deleted studies' too)."""
    return _events(session, identity, study=study, limit=limit, before=before)


def _events(
    session: Session,
    identity: Identity,
    *,
    project_id: int | None = None,
    study: str | None = None,
    limit: int,
    before: int | None,
) -> list[EventPublic]:
    rows = audit.list_events(
        session,
        projects=access.visible_projects(session, identity),
        project_id=project_id,
        study=study,
        limit=limit,
        before=before,
    )
    return [
        EventPublic(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            project=project,
            study=e.study,
            detail=e.detail,
        )
        for e, project in rows
    ]


HookId = Annotated[int, Path(ge=1, le=MAX_ID, description="Webhook id.")]


def _hook(hook: Webhook) -> WebhookPublic:
    return WebhookPublic(
        id=hook.id,
        url=hook.url,
        events=list(hook.events),
        study=hook.study,
        created_by=hook.created_by,
        created_at=hook.created_at,
    )


@router.post("/{name}/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def add_webhook(
    name: str, body: WebhookIn, session: SessionDep, identity: IdentityDep
) -> WebhookCreated:
    """Tell a URL of the project's (or one study's) events (owner or admin). The answer
    holds the hook's secret, shown this once: each delivery is signed with it
    (``X-HPO-Signature-256: sha256=<HMAC-SHA256 of the body>``)."""
    hook = actions.add_webhook(session, identity, name, body.url, list(body.events), body.study)
    out = WebhookCreated(**_hook(hook).model_dump(), secret=hook.secret)
    session.commit()
    return out


@router.get("/{name}/webhooks", response_model=list[WebhookPublic])
def list_webhooks(name: str, session: SessionDep, identity: IdentityDep) -> list[WebhookPublic]:
    """The project's hooks (owner or admin; never their secrets)."""
    project, _ = access.get_project(session, identity, name, need="owner")
    return [_hook(h) for h in webhooks.list_webhooks(session, project.id)]


@router.delete("/{name}/webhooks/{hook_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_webhook(
    name: str, hook_id: HookId, session: SessionDep, identity: IdentityDep
) -> Response:
    actions.remove_webhook(session, identity, name, hook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/webhooks/{hook_id}/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(
    name: str, hook_id: HookId, session: SessionDep, identity: IdentityDep, limit: Limit = 100
) -> list[DeliveryPublic]:
    """A hook's delivery log, newest first: each event, its tries and the last answer."""
    project, _ = access.get_project(session, identity, name, need="owner")
    return [
        DeliveryPublic(
            id=d.id,
            event=d.event,
            status=d.status,
            attempts=d.attempts,
            response_code=d.response_code,
            error=d.error,
            next_at=d.next_at,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )
        for d in webhooks.list_deliveries(session, project.id, hook_id, limit)
    ]
