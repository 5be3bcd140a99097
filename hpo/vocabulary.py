"""The API's small vocabulary that is not a schema: how trial lists sort, the scopes of
tokens, the roles in a project, the largest page of trials. Defined once here (``hpo.schemas`` and
``hpo.client`` re-export them) and light, the standard library only: the CLI's options
are built from these when ``hpo --help`` runs, which loads no pydantic model.
Trial and study statuses live in ``search.status``."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DEFAULT_PROJECT",
    "PAGE_SIZE",
    "ROLES",
    "WEBHOOK_EVENTS",
    "Role",
    "TokenScope",
    "TrialSortKey",
    "WebhookEvent",
]

#: Columns a list of trials sorts by (``duration``: finished minus started).
TrialSortKey = Literal["number", "value", "status", "duration", "attempt", "worker", "started_at"]
#: What a token may do: ``admin`` everything (tokens too), ``user`` studies and trials,
#: ``worker`` run trials only.
TokenScope = Literal["admin", "user", "worker"]
#: The most trials the server returns in one page.
PAGE_SIZE = 1000
#: A user's role in a project, weakest first: ``viewer`` reads; ``member`` also creates
#: and controls studies; ``owner`` also manages the members and the project's settings.
Role = Literal["viewer", "member", "owner"]
ROLES: tuple[Role, ...] = ("viewer", "member", "owner")
#: The project a study joins when its spec names none (and where the migration to
#: projects put every study made before).
DEFAULT_PROJECT = "default"
#: What a webhook may be told of.
WebhookEvent = Literal["study.completed", "study.stopped", "study.failed", "trial.failed"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "study.completed",
    "study.stopped",
    "study.failed",
    "trial.failed",
)
