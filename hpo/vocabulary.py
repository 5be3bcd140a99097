"""The API's small vocabulary that is not a schema: how trial lists sort, the scopes of
tokens, the roles in a project, the largest page of trials. Defined once here (``hpo.schemas`` and
``hpo.client`` re-export them) and light, the standard library only: the CLI's options
are built from these when ``hpo --help`` runs, which loads no pydantic model.
Trial and study statuses live in ``search.status``."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DEFAULT_POOL",
    "DEFAULT_PROJECT",
    "PAGE_SIZE",
    "POOL_PATTERN",
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

#: The pool a worker joins and a study runs in when none is named (``hpo.resources``).
DEFAULT_POOL = "default"
#: Pool names: what a worker's ``--pool`` and a study's ``resources.pool`` may be (they
#: also name a Redis queue and a CLI column: no spaces, no colon).
POOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
