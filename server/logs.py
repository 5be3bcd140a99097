"""Trial logs: store the chunks a worker ships, keep each attempt's output bounded, and
read it back, whole or from a position on.

Bounding: of each attempt's output the first half of ``cap`` bytes (the head: how it
started, the configuration it printed) and the last half (the tail: where it ended, the
traceback) are kept; chunks that fall between are deleted as newer ones arrive, and the
reader marks the gap. Storing a chunk is one insert and, once the head is full, one
indexed delete, so a trial printing a flood costs the server the same per byte whatever
the log's length.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hpo.logs import LogAck, LogChunkIn, TrialLog, cut_marker
from server.db import insert_ignore
from server.errors import Conflict, NotFound
from server.tables import LOG_CHUNKS, LogChunk, Trial, utcnow

__all__ = ["append_chunk", "read_log"]


def append_chunk(session: Session, trial_id: int, chunk: LogChunkIn, *, cap: int) -> LogAck:
    """Store ``chunk`` of the trial's attempt (an attempt that already ended may still
    send its last words); Conflict for an attempt the trial never had. A chunk already
    stored at that position is kept as it was."""
    attempt = session.scalar(select(Trial.attempt).where(Trial.id == trial_id))
    if attempt is None:
        raise NotFound(f"no trial with id {trial_id}")
    if chunk.attempt > attempt:
        raise Conflict(f"trial {trial_id} has no attempt {chunk.attempt} (its latest is {attempt})")
    where = (LogChunk.trial_id == trial_id, LogChunk.attempt == chunk.attempt)
    # Sent again (its answer was lost): the first one stands.
    insert_ignore(
        session,
        LOG_CHUNKS,
        {
            "trial_id": trial_id,
            "attempt": chunk.attempt,
            "position": chunk.position,
            "nbytes": chunk.nbytes,
            "text": chunk.text,
            "created_at": utcnow(),
        },
        ["trial_id", "attempt", "position"],
    )
    head, end = cap // 2, chunk.position + chunk.nbytes
    keep_from = end - (cap - head)
    if keep_from > head:
        session.execute(
            delete(LogChunk).where(
                *where,
                LogChunk.position >= head,
                LogChunk.position + LogChunk.nbytes <= keep_from,
            )
        )
    size = session.scalar(select(func.max(LogChunk.position + LogChunk.nbytes)).where(*where))
    return LogAck(size=int(size or 0))


def read_log(session: Session, trial: Trial, attempt: int | None, after: int = 0) -> TrialLog:
    """The attempt's log (default: the latest attempt with one) from byte ``after`` on,
    with each cut marked in place."""
    attempts = [
        int(a)
        for a in session.scalars(
            select(LogChunk.attempt)
            .where(LogChunk.trial_id == trial.id)
            .distinct()
            .order_by(LogChunk.attempt)
        )
    ]
    shown = attempt if attempt is not None else (attempts[-1] if attempts else trial.attempt)
    where = (LogChunk.trial_id == trial.id, LogChunk.attempt == shown)
    size, stored = session.execute(
        select(
            func.coalesce(func.max(LogChunk.position + LogChunk.nbytes), 0),
            func.coalesce(func.sum(LogChunk.nbytes), 0),
        ).where(*where)
    ).one()
    rows = session.execute(
        select(LogChunk.position, LogChunk.nbytes, LogChunk.text)
        .where(*where, LogChunk.position + LogChunk.nbytes > after)
        .order_by(LogChunk.position)
    ).all()
    if size and shown not in attempts:  # its first chunk came between the two reads
        attempts = sorted({*attempts, shown})
    parts: list[str] = []
    reached = after
    for position, nbytes, text in rows:
        if position > reached:
            parts.append(cut_marker(position - reached))
        parts.append(text)
        reached = max(reached, position + nbytes)
    return TrialLog(
        trial_id=trial.id,
        study=trial.study.name,
        number=trial.number,
        attempt=shown,
        attempts=attempts,
        text="".join(parts),
        size=int(size),
        cut_bytes=int(size) - int(stored),
        next_position=max(reached, after),
        running=trial.status == "running" and shown == trial.attempt,
    )
