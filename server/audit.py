"""The audit trail: who created, paused, resumed, stopped or deleted a study, changed
its budget, or changed a project's members and settings, and when.

Events are written in the transaction of the change they record, so a refused or
rolled-back change leaves no event and a stored change always has one. They name the
study rather than reference it: the trail outlives a deleted study.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth import Identity
from server.tables import Event, Project

__all__ = ["list_events", "record"]


def record(
    session: Session,
    identity: Identity,
    action: str,
    *,
    project_id: int | None,
    study: str | None = None,
    **detail: Any,
) -> Event:
    """Add one event (``action`` such as ``study.stop``; ``detail``: JSON-ready)."""
    event = Event(
        actor=identity.name, action=action, project_id=project_id, study=study, detail=detail
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    projects: set[int] | None,
    project_id: int | None = None,
    study: str | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[tuple[Event, str | None]]:
    """Events newest first, with their project's name: of the ``projects`` (None:
    every one, events of no project included), narrowed to one project or study;
    ``before`` an event id pages back in time."""
    query = (
        select(Event, Project.name)
        .outerjoin(Project, Project.id == Event.project_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )
    if projects is not None:
        query = query.where(Event.project_id.in_(projects))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if study is not None:
        query = query.where(Event.study == study)
    if before is not None:
        query = query.where(Event.id < before)
    return [(event, name) for event, name in session.execute(query).all()]
