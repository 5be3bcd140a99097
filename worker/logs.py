"""Capture everything an attempt prints and ship it to the server in bounded chunks.

Capture is at the file-descriptor level: while an attempt runs, descriptors 1 and 2 of
the worker process are one pipe read by a thread, so the output of subprocesses, of
native libraries (a CUDA warning, a C extension's ``printf``) and of Python alike is
caught, in the order it was printed, and each byte still reaches the worker's own
stdout (tee). A worker
process runs one trial at a time, so what it prints meanwhile is that trial's.

Shipping: a thread sends what came every ``interval`` seconds (``HPO_LOG_INTERVAL``), so
a worker killed mid-trial loses about the last interval of output. The worker keeps, of
the attempt's output, what the server would keep (the head and the tail of
``log_max_bytes``, :mod:`server.logs`): a flood of output costs memory bounded by that
cap and never waits for the server, and what is dropped arrives as a gap the server
marks as cut. Chunks are cut at UTF-8 character boundaries.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

from hpo.client import APIError, Conflict, InvalidRequest, NotFound
from hpo.logs import CHUNK_BYTES, LogChunkIn

__all__ = ["LogShipper", "capture_output", "shipped_output"]

log = logging.getLogger(__name__)


def _char_boundary(buf: bytes | bytearray, n: int, final: bool) -> int:
    """The largest cut ``<= n`` into ``buf`` that splits no UTF-8 character (bytes that
    are not UTF-8 are cut anywhere); at the end of ``buf`` an unfinished character waits
    for its rest unless ``final``."""
    if n >= len(buf):
        if final:
            return len(buf)
        n = len(buf)
        # An unfinished multi-byte character at the end: cut before its lead byte.
        for back in range(1, min(4, n + 1)):
            byte = buf[n - back]
            if byte & 0xC0 == 0xC0:  # a lead byte: how long is its character?
                length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
                return n - back if back < length else n
            if byte & 0xC0 != 0x80:  # plain ASCII: nothing unfinished
                return n
        return n
    cut = n
    while cut > 0 and buf[cut] & 0xC0 == 0x80 and n - cut < 3:
        cut -= 1
    return cut if cut > 0 else n


class LogShipper:
    """The output of one attempt: bounded like the server's copy, sent in chunks.

    ``write`` (any thread) takes bytes as they are printed; ``flush`` sends what is
    pending; the shipping thread flushes every ``interval`` seconds; ``close`` stops it
    and sends the rest. The thread starts with the first bytes written: most trials of
    a fast study print nothing, and a thread's start and join cost more CPU than the
    rest of an attempt's capture. ``send`` delivers one chunk (a client call); a 404 or 409 (the
    trial is gone, or the attempt is unknown) stops shipping for good.
    """

    def __init__(
        self,
        send: Callable[[LogChunkIn], object],
        attempt: int,
        *,
        cap: int,
        interval: float,
    ) -> None:
        self._send = send
        self._attempt = attempt
        self._interval = interval
        self._head_end = cap // 2
        self._tail_max = cap - self._head_end
        self._lock = threading.Lock()
        self._written = 0  # bytes printed in all
        self._head = bytearray()  # unsent bytes inside the head
        self._head_from = 0
        self._tail = bytearray()  # unsent bytes past the head, at most _tail_max
        self._tail_from = 0
        self._dropped = 0
        self._dead = False
        self._chunk = CHUNK_BYTES  # halved when the server finds a chunk too large
        self._done = threading.Event()
        self._armed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="hpo-logs")

    @property
    def written(self) -> int:
        """Bytes printed so far."""
        return self._written

    @property
    def dropped(self) -> int:
        """Bytes this worker never sent (cut to keep the log bounded)."""
        return self._dropped

    def start(self) -> LogShipper:
        """Ship from now on (the thread itself starts with the first bytes)."""
        self._armed = True
        return self

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._armed and not self._done.is_set() and self._thread.ident is None:
                self._thread.start()
            position = self._written
            self._written += len(data)
            if position < self._head_end:
                take = min(len(data), self._head_end - position)
                if not self._head:
                    self._head_from = position
                self._head += data[:take]
                data, position = data[take:], position + take
            if data:
                if not self._tail:
                    self._tail_from = position
                self._tail += data
                excess = len(self._tail) - self._tail_max
                if excess > 0:
                    del self._tail[:excess]
                    self._tail_from += excess
                    self._dropped += excess

    def flush(self, *, final: bool = False) -> None:
        """Send everything pending (the head first), one chunk at a time."""
        while not self._dead:
            piece = self._take(final)
            if piece is None:
                return
            position, data = piece
            text = data.decode("utf-8", "replace").replace("\x00", "\ufffd")
            chunk = LogChunkIn(
                attempt=self._attempt, position=position, nbytes=len(data), text=text
            )
            try:
                self._send(chunk)
            except InvalidRequest as err:
                if err.status_code == 413 and self._chunk > 4096:
                    self._chunk //= 2  # its JSON was over the body limit: smaller ones
                    self._give_back(position, data)
                    continue
                log.info("trial log not shipped any more: %s", err.message)
                self._dead = True
            except (NotFound, Conflict) as err:
                log.info("trial log not shipped any more: %s", err.message)
                self._dead = True
            except APIError as err:  # the server is away: keep it for the next round
                self._give_back(position, data)
                log.debug("trial log not shipped now: %s", err.message)
                return

    def _take(self, final: bool) -> tuple[int, bytes] | None:
        with self._lock:
            for buf, start in ((self._head, self._head_from), (self._tail, self._tail_from)):
                if not buf:
                    continue
                cut = _char_boundary(buf, self._chunk, final)
                if cut == 0:
                    continue
                data = bytes(buf[:cut])
                del buf[:cut]
                if buf is self._head:
                    self._head_from += cut
                else:
                    self._tail_from += cut
                return start, data
        return None

    def _give_back(self, position: int, data: bytes) -> None:
        with self._lock:
            if position + len(data) <= self._head_end:
                self._head[:0] = data
                self._head_from = position
            elif not self._tail or self._tail_from == position + len(data):
                self._tail[:0] = data
                self._tail_from = position
                excess = len(self._tail) - self._tail_max
                if excess > 0:
                    del self._tail[:excess]
                    self._tail_from += excess
                    self._dropped += excess
            else:
                self._dropped += len(data)

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                # What Python still buffers reaches the pipe, then the pump, then us.
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                self.flush()
            except Exception:  # never let shipping logs end the trial
                log.exception("shipping the trial log failed")

    def close(self) -> None:
        """Stop the thread and send the rest (a server that is away gets what a few
        tries deliver; the trial's outcome never waits long on its log)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 30)
        for _ in range(3):
            self.flush(final=True)
            if self._dead or not (self._head or self._tail):
                return


@contextlib.contextmanager
def capture_output(sink: Callable[[bytes], None], *, tee: bool = True) -> Iterator[None]:
    """Send everything written to descriptors 1 and 2 meanwhile to ``sink`` (and, with
    ``tee``, on to where descriptor 1 pointed before). Python's own streams are flushed at both
    ends, and inside they write, line-buffered, to the captured descriptors."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    # One pipe behind both descriptors: the log keeps the order things were printed
    # in, as a terminal shows them (two pipes would interleave by thread timing).
    read_end, write_end = os.pipe()
    _widen(read_end)
    closing = threading.Event()
    pump = threading.Thread(
        target=_pump,
        args=(read_end, saved[1] if tee else None, sink, closing),
        daemon=True,
        name="hpo-output",
    )
    try:
        for fd in (1, 2):
            os.dup2(write_end, fd)
        os.close(write_end)
        write_end = -1
        pump.start()
        restore = _python_streams_to_descriptors()
        try:
            yield
        finally:
            restore()
    finally:
        closing.set()
        for fd, copy in saved.items():
            os.dup2(copy, fd)  # the pipe's last write ends close here: the pump sees EOF
        if write_end >= 0:
            os.close(write_end)
        if pump.ident is not None:
            # A child process that still holds a write end keeps the pipe open: do not
            # wait for it forever.
            pump.join(timeout=5)
        for copy in saved.values():
            os.close(copy)  # after the pump's last tee write into it
        if not pump.is_alive():
            os.close(read_end)


#: Bytes a pipe holds (Linux raises its 64 KiB default on request, up to
#: /proc/sys/fs/pipe-max-size): a trial printing a flood writes on while the pump sleeps.
_PIPE_BYTES = 1 << 20
#: How long the pump lets output gather when little came: one wake-up (and one hold of
#: the interpreter's lock, which the trial's own threads wait for) per gather, not one
#: per line printed.
_GATHER_S = 0.02


def _widen(read_end: int) -> None:
    with contextlib.suppress(Exception):
        import fcntl

        fcntl.fcntl(read_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)


def _pump(
    read_end: int, target: int | None, sink: Callable[[bytes], None], closing: threading.Event
) -> None:
    while True:
        try:
            data = os.read(read_end, _PIPE_BYTES)
        except OSError:
            return
        if not data:
            return
        if target is not None:
            with contextlib.suppress(OSError):
                _write_all(target, data)
        with contextlib.suppress(Exception):  # the log is best effort; output still flows
            sink(data)
        if len(data) < 65536:
            closing.wait(_GATHER_S)  # no gathering once the attempt ends: drain at once


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Stdout(io.TextIOWrapper):
    """stdout during a trial: a line is flushed when it ends, unless lines come faster
    than one per ``_BURST_S`` (a flood: then Python's 8 KiB buffer gathers them, and
    the shipper flushes what is left at each shipment), so the log keeps the order
    things were printed in while a flood costs a system call per 8 KiB, not per line."""

    _flushed = 0.0

    def write(self, text: str) -> int:
        written = super().write(text)
        if "\n" in text:
            now = time.monotonic()
            if now - self._flushed > _BURST_S:
                self.flush()
                self._flushed = now
        return written


class _Stderr(io.TextIOWrapper):
    """stderr during a trial: line-buffered, and what stdout still holds goes first,
    so a traceback lands after the prints that came before it."""

    partner: io.TextIOWrapper | None = None

    def write(self, text: str) -> int:
        if self.partner is not None:
            self.partner.flush()
        return super().write(text)


#: Lines closer together than this are a flood (see ``_Stdout``).
_BURST_S = 0.01


def _python_streams_to_descriptors() -> Callable[[], None]:
    """Point ``sys.stdout`` and ``sys.stderr`` at descriptors 1 and 2 (see ``_Stdout``
    and ``_Stderr``), even where Python's streams were somewhere else (a notebook, a
    test runner); returns what puts them back."""
    saved = (sys.stdout, sys.stderr)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    out = _Stdout(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
        encoding=encoding,
        errors="backslashreplace",
    )
    err = _Stderr(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    err.partner = out
    sys.stdout, sys.stderr = out, err

    def restore() -> None:
        for stream in (out, err):
            with contextlib.suppress(Exception):
                stream.flush()
                stream.close()
        sys.stdout, sys.stderr = saved

    return restore


@contextlib.contextmanager
def shipped_output(
    send: Callable[[LogChunkIn], object],
    attempt: int,
    *,
    cap: int,
    interval: float,
    tee: bool = True,
) -> Iterator[LogShipper]:
    """Capture an attempt's output and ship it while the block runs; the rest is sent
    when it ends."""
    shipper = LogShipper(send, attempt, cap=cap, interval=interval).start()
    try:
        with capture_output(shipper.write, tee=tee):
            yield shipper
    finally:
        shipper.close()
