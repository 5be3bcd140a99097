"""Checks of ``hpo`` command results (Typer's CliRunner) shared by the CLI tests."""

from __future__ import annotations

from typer.testing import Result

__all__ = ["ok", "one_line_error"]


def ok(result: Result) -> Result:
    """The command succeeded (else the test fails with its output)."""
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def one_line_error(result: Result, *expected: str) -> None:
    """Exit 1, the message on stderr with each of ``expected``, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in result.stderr, result.stderr
