"""Child processes that a test stops with a real Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal


def hear_ctrl_c() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: the child starts with SIGINT at its
    default, so the Python in it turns a Ctrl-C into KeyboardInterrupt. Without this a
    test run with SIGINT ignored (a background job of a shell without job control
    ignores it, and children inherit that) starts children that never hear the
    Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
