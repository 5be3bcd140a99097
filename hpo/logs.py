"""Wire schemas of trial logs: what each attempt printed, shipped by its worker in
bounded chunks and read back whole or from a position on (to follow it live).

A chunk's ``position`` counts bytes of the attempt's whole output. The server keeps the
head and the tail of each attempt's output (``HPO_LOG_MAX_BYTES`` in all) and marks what
lies between as cut.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from hpo.spec import check_json_text

__all__ = ["CHUNK_BYTES", "LogAck", "LogChunkIn", "TrialLog", "cut_marker"]

#: The most output one chunk carries (a worker ships more as several). Its JSON stays
#: under the default body limit (1 MiB) unless the text is mostly control characters
#: (escaped six bytes each); a worker answered 413 halves its chunks.
CHUNK_BYTES = 256 * 1024


def cut_marker(nbytes: int) -> str:
    """The line that stands, in a log, for ``nbytes`` of output that were cut."""
    return f"\n[… {nbytes:,} bytes of output cut here: the log keeps its head and tail …]\n"


class LogChunkIn(BaseModel):
    """A piece of an attempt's output: ``text`` stands for the ``nbytes`` bytes printed
    from ``position`` on (decoded as UTF-8; bytes that are not come as U+FFFD). Sending
    a chunk again is harmless: the first one stored wins."""

    model_config = ConfigDict(extra="forbid")

    attempt: StrictInt = Field(ge=1, le=1_000_000)
    position: StrictInt = Field(ge=0, le=2**62)
    nbytes: StrictInt = Field(ge=1, le=CHUNK_BYTES)
    text: str = Field(max_length=CHUNK_BYTES)

    @field_validator("text")
    @classmethod
    def _storable(cls, text: str) -> str:
        check_json_text(text, "text")
        return text


class LogAck(BaseModel):
    """The answer to a chunk: how many bytes of the attempt's output the server has
    heard of (the end of the furthest chunk)."""

    size: int


class TrialLog(BaseModel):
    """An attempt's log as stored, from ``after`` on: ``next_position`` is the
    ``after`` of the next read when following it."""

    trial_id: int
    study: str
    number: int
    attempt: int = Field(description="The attempt shown (default: the latest with a log).")
    attempts: list[int] = Field(description="Attempts that have a log.")
    text: str = Field(description="What it printed, cuts marked in place.")
    size: int = Field(description="Bytes the attempt printed (as far as the server heard).")
    cut_bytes: int = Field(description="Bytes cut in the middle to keep the log bounded.")
    next_position: int
    running: bool = Field(description="Whether this attempt may still print.")
