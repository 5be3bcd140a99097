"""The room table of DESIGN.md holds: ``lint-imports`` keeps every contract of
pyproject.toml's ``[tool.importlinter]`` (``make lint`` runs it too), and every contract
can fail: on a copy of the rooms with one forbidden import planted per contract, each
one is broken, naming the planted line.

Every module's first statement is ``from __future__ import annotations``: ruff's I002
(``[tool.ruff.lint.isort] required-imports``) checks that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from contracts.rooms import eager_import_lines

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("hpo", "search", "models", "server", "worker", "migrations")

#: contract name -> (file, the line planted there, what the broken contract reports).
PLANTED: dict[str, tuple[str, str, str]] = {
    "search: pure computation (no service, torch, hpo or models)": (
        "search/space.py",
        "import hpo.settings",
        "search.space -> hpo.settings",
    ),
    "search: numpy, scipy, scikit-learn, scikit-optimize only": (
        "search/grid.py",
        "import yaml",
        "search.grid:",
    ),
    "models: never server, worker, search or hpo": (
        "models/mlp.py",
        "import search.errors",
        "models.mlp -> search.errors",
    ),
    "models: torch, numpy, scikit-learn only": ("models/cnn.py", "import pydantic", "models.cnn:"),
    "server: never worker, models or torch": (
        "server/errors.py",
        "import worker.gpus",
        "server.errors -> worker.gpus",
    ),
    "worker: never server or the database (it talks HTTP)": (
        "worker/gpus.py",
        "import sqlalchemy",
        "worker.gpus -> sqlalchemy",
    ),
    "hpo: server and worker only inside functions (lazily)": (
        "hpo/cli/fleet.py",
        "import worker.daemon",
        "hpo.cli.fleet:",
    ),
    "hpo: never models or torch itself": (
        "hpo/cli/demo.py",
        "def _planted() -> None:\n    import torch",
        "hpo.cli.demo -> torch",
    ),
    "hpo client, spec, schemas, settings: no service, even lazily": (
        "hpo/errors.py",
        "def _planted() -> None:\n    import server.db",
        "hpo.errors -> server.db",
    ),
    "migrations: never worker, models or torch": (
        "migrations/env.py",
        "def _planted() -> None:\n    import models",
        "migrations.env -> models",
    ),
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` run in ``cwd`` (its pyproject.toml, its packages)."""
    code = (
        "import sys; from importlinter.cli import lint_imports_command\n"
        "sys.argv = ['lint-imports', '--no-cache']; lint_imports_command()"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def verdicts(out: str) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from lint-imports' report (names may wrap)."""
    text = " ".join(out.split())
    found = {name: re.search(rf"{re.escape(name)} ?(KEPT|BROKEN)", text) for name in PLANTED}
    return {name: m.group(1) for name, m in found.items() if m}


def test_the_room_table_holds() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == dict.fromkeys(PLANTED, "KEPT")  # every one ran


def test_every_contract_catches_a_planted_import(tmp_path: Path) -> None:
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "tests" / "contracts").mkdir(parents=True)
    shutil.copyfile(ROOT / "tests/contracts/rooms.py", tmp_path / "tests/contracts/rooms.py")
    for file, line, _ in PLANTED.values():
        with (tmp_path / file).open("a", encoding="utf-8") as f:
            f.write(f"\n\n{line}\n")

    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert verdicts(result.stdout) == dict.fromkeys(PLANTED, "BROKEN")
    # The report: one section per broken contract, its name underlined with dashes.
    report = result.stdout.split("Broken contracts", 1)[1]
    sections = {block.split("\n", 1)[0]: block for block in re.split(r"\n(?=[^\n]+\n-+\n)", report)}
    for name, (_, _, reported) in PLANTED.items():
        assert reported in sections[name], (name, sections[name])


def test_eager_import_lines_tells_import_time_from_call_time() -> None:
    source = textwrap.dedent(
        """\
        import a
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import b
        else:
            import c
        try:
            import d
        except ImportError:
            pass
        class K:
            import e
        def f():
            import g
            class Z:
                import h
        async def y():
            import i
        """
    )
    assert eager_import_lines(source) == {1, 2, 6, 8, 12}
