"""Capturing an attempt's output at the descriptor level, and the shipper that bounds
and sends it (its ``send`` seam collects chunks here; the real server is in
``tests/e2e/test_trial_logs.py``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import subprocess
import sys

import pytest

from hpo.errors import InvalidRequest, NotFound, ServerUnavailable
from hpo.logs import CHUNK_BYTES, LogChunkIn
from worker.logs import LogShipper, capture_output


def test_capture_catches_python_the_os_subprocesses_and_c(capfd: pytest.CaptureFixture) -> None:
    seen = bytearray()
    with capture_output(seen.extend):
        print("from python")
        print("to stderr", file=sys.stderr)
        os.write(1, b"from the os\n")
        subprocess.run(["sh", "-c", "echo from a child; echo child error >&2"], check=True)
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.printf(b"from c\n")
        libc.fflush(None)
    # Everything, in the order it was printed, whichever stream and whoever printed it.
    expected = ["from python", "to stderr", "from the os", "from a child", "child error", "from c"]
    assert seen.decode().splitlines() == expected
    # Tee: the worker's own output still gets everything.
    out, _ = capfd.readouterr()
    assert out.splitlines() == expected
    # And the descriptors are back: nothing after the block is captured.
    print("after")
    assert b"after" not in seen


def _collect(cap: int, writes: list[bytes]) -> tuple[list[LogChunkIn], LogShipper]:
    sent: list[LogChunkIn] = []
    shipper = LogShipper(sent.append, 1, cap=cap, interval=60)
    for data in writes:
        shipper.write(data)
    shipper.close()
    return sent, shipper


def test_a_flood_ships_only_the_head_and_the_tail() -> None:
    cap = 64 * 1024
    line = b"y" * 99 + b"\n"
    sent, shipper = _collect(cap, [b"%07d" % i + line[7:] for i in range(10_000)])  # 1 MB
    total = 10_000 * 100
    assert shipper.written == total
    assert sum(c.nbytes for c in sent) == cap
    assert shipper.dropped == total - cap
    head = [c for c in sent if c.position < cap // 2]
    tail = [c for c in sent if c.position >= cap // 2]
    assert head[0].position == 0 and head[-1].position + head[-1].nbytes == cap // 2
    assert tail[-1].position + tail[-1].nbytes == total
    assert all(c.nbytes <= CHUNK_BYTES for c in sent)
    assert sent[0].text.startswith("0000000") and sent[-1].text.endswith("\n")


def test_chunks_split_no_character_and_nul_is_replaced() -> None:
    data = "é".encode() * (CHUNK_BYTES // 2 + 7) + b"a\x00b"
    sent, _ = _collect(1 << 22, [data[:5], data[5:]])
    text = "".join(c.text for c in sent)
    assert "\ufffd" not in text.replace("a\ufffdb", "")
    assert text.endswith("a\ufffdb") and text.count("é") == CHUNK_BYTES // 2 + 7
    positions = [(c.position, c.nbytes) for c in sent]
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(positions))


def test_a_server_away_loses_nothing_and_a_gone_trial_stops_shipping() -> None:
    calls: list[LogChunkIn] = []
    failures = [ServerUnavailable(0, "down"), ServerUnavailable(0, "down")]

    def flaky(chunk: LogChunkIn) -> None:
        if failures:
            raise failures.pop()
        calls.append(chunk)

    shipper = LogShipper(flaky, 1, cap=1 << 20, interval=60)
    shipper.write(b"one\n")
    shipper.flush()  # down: kept
    shipper.write(b"two\n")
    shipper.flush()  # down again: kept
    shipper.close()
    assert "".join(c.text for c in calls) == "one\ntwo\n"

    gone: list[int] = []

    def missing(chunk: LogChunkIn) -> None:
        gone.append(chunk.position)
        raise NotFound(404, "no trial")

    shipper = LogShipper(missing, 1, cap=1 << 20, interval=60)
    shipper.write(b"a" * (CHUNK_BYTES * 3))
    shipper.close()
    assert gone == [0]  # one try, then it stops


def test_a_chunk_over_the_body_limit_is_sent_again_in_smaller_pieces() -> None:
    sent: list[LogChunkIn] = []

    def limited(chunk: LogChunkIn) -> None:
        if chunk.nbytes > 8192:
            raise InvalidRequest(413, "body too large")
        sent.append(chunk)

    data = bytes(range(32, 127)) * 3000  # 285 KB
    shipper = LogShipper(limited, 1, cap=1 << 22, interval=60)
    shipper.write(data)
    shipper.close()
    assert "".join(c.text for c in sent).encode() == data
    assert max(c.nbytes for c in sent) <= 8192
