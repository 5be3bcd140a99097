"""Webhooks: a project's owners ask to be told when a study completes, stops or fails,
or a trial fails; the service POSTs a signed JSON body to their URL.

Emitting never sends anything itself: :func:`emit` writes one ``deliveries`` row per
matching hook in the transaction of the change it tells of (an outbox), so an event is
never lost to a crash and never sent for a change that rolled back. The sending, with
retries and backoff, is :mod:`server.delivery`'s.

Each body is signed as GitHub signs its webhooks: ``X-HPO-Signature-256: sha256=<hex>``,
the HMAC-SHA256 of the exact body bytes under the hook's secret (made here, shown once
when the hook is created).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hpo.vocabulary import WebhookEvent
from server.errors import NotFound
from server.studies import best_trial
from server.tables import Delivery, Study, Trial, Webhook, utcnow

__all__ = [
    "WebhookEvent",
    "create_webhook",
    "delete_webhook",
    "emit",
    "emit_for_trial",
    "list_deliveries",
    "list_webhooks",
    "sign",
]


def sign(secret: str, body: bytes) -> str:
    """The ``X-HPO-Signature-256`` header of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def create_webhook(
    session: Session,
    project_id: int,
    url: str,
    events: list[str],
    *,
    study: str | None = None,
    created_by: str | None = None,
) -> Webhook:
    """Store a hook with a new secret (the caller shows it once)."""
    hook = Webhook(
        project_id=project_id,
        study=study,
        url=url,
        events=sorted(set(events)),
        secret="whsec_" + secrets.token_urlsafe(32),
        created_by=created_by,
    )
    session.add(hook)
    session.flush()
    return hook


def list_webhooks(session: Session, project_id: int) -> list[Webhook]:
    return list(
        session.scalars(
            select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.id)
        )
    )


def _hook(session: Session, project_id: int, hook_id: int) -> Webhook:
    hook = session.get(Webhook, hook_id)
    if hook is None or hook.project_id != project_id:
        raise NotFound(f"no webhook {hook_id} in this project")
    return hook


def delete_webhook(session: Session, project_id: int, hook_id: int) -> Webhook:
    """Delete a hook with its delivery log; NotFound when the project has no such hook."""
    hook = _hook(session, project_id, hook_id)
    session.delete(hook)
    session.flush()
    return hook


def list_deliveries(
    session: Session, project_id: int, hook_id: int, limit: int = 100
) -> list[Delivery]:
    """A hook's deliveries, newest first."""
    _hook(session, project_id, hook_id)
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.webhook_id == hook_id)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )


def emit(session: Session, study: Study, event: WebhookEvent, trial: Trial | None = None) -> int:
    """Queue ``event`` of ``study`` (and ``trial``) for every hook of its project that
    asked for it (a study's own hooks, and the project's); how many were queued. One
    query when no hook matches."""
    hooks = session.scalars(
        select(Webhook).where(
            Webhook.project_id == study.project_id,
            or_(Webhook.study.is_(None), Webhook.study == study.name),
        )
    ).all()
    wanted = [hook for hook in hooks if event in hook.events]
    if not wanted:
        return 0
    payload = _payload(session, study, event, trial)
    for hook in wanted:
        body = dict(payload, delivery=str(uuid.uuid4()))
        session.add(
            Delivery(
                webhook_id=hook.id,
                event=event,
                body=json.dumps(body, sort_keys=True, default=str),
                status="pending",
                attempts=0,
                next_at=utcnow(),
            )
        )
    return len(wanted)


def emit_for_trial(session: Session, trial_id: int, event: WebhookEvent) -> int:
    """:func:`emit` for a trial known by id (the reaper's rows carry no objects)."""
    trial = session.get(Trial, trial_id)
    if trial is None:
        return 0
    return emit(session, trial.study, event, trial)


def _payload(session: Session, study: Study, event: str, trial: Trial | None) -> dict[str, Any]:
    best = best_trial(session, study)
    body: dict[str, Any] = {
        "event": event,
        "at": utcnow().isoformat(),
        "project": study.project.name,
        "study": {
            "name": study.name,
            "status": study.status,
            "reason": study.reason,
            "objective": {"metric": study.metric, "direction": study.direction},
            "best_value": best.value if best else None,
            "best_trial": best.number if best else None,
        },
    }
    if trial is not None:
        body["trial"] = {
            "number": trial.number,
            "attempt": trial.attempt,
            "status": trial.status,
            "error": trial.error,
            "params": trial.params,
        }
    return body
