"""The client, the spec and the CLI stay light: each is imported (or run) in a fresh
interpreter and must leave the heavy dependencies out of ``sys.modules`` (DESIGN.md,
``hpo/``: "light: no scipy/sklearn/skopt/torch on import"). Strategies load theirs when
they compute suggestions, not when the spec names or validates them.

NumPy is on the list too: it cost more than the rest of ``from hpo import Client``
together (``python -m benchmarks.import_time``), and the client needs none of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("scipy", "sklearn", "skopt", "torch", "pandas", "numpy")
#: The rooms and libraries the client never needs.
SERVICE = ("server", "worker", "models", "fastapi", "sqlalchemy", "uvicorn", "redis", "rq")
#: What `hpo --help` does not need either: no HTTP client, no pydantic model.
CLIENT = ("httpx", "pydantic", "hpo.client", "hpo.schemas", "hpo.spec")


def loaded_after(code: str) -> set[str]:
    """The top-level and ``hpo.*`` modules a fresh interpreter holds after ``code``."""
    report = (
        "\nimport json, sys\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules}"
        " | {m for m in sys.modules if m.startswith('hpo.')})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code + report],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    ["import hpo", "from hpo import Client", "import hpo.spec", "import hpo.schemas"],
)
def test_the_client_and_the_spec_import_nothing_heavy(code: str) -> None:
    loaded = loaded_after(code)
    assert loaded.isdisjoint(HEAVY + SERVICE), sorted(loaded & {*HEAVY, *SERVICE})


def test_hpo_help_imports_no_client_and_nothing_heavy() -> None:
    code = (
        "import sys; sys.argv = ['hpo', '--help']\n"
        "from hpo.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    loaded = loaded_after(code)
    assert "hpo.cli.study" in loaded  # the whole command tree was built
    forbidden = {*HEAVY, *SERVICE, *CLIENT}
    assert loaded.isdisjoint(forbidden), sorted(loaded & forbidden)


@pytest.mark.parametrize("strategy", ["random", "grid", "bayes", "evolution", "hyperband", "asha"])
def test_validating_a_spec_builds_its_strategy_without_heavy_imports(strategy: str) -> None:
    """What ``hpo study create`` does before sending anything: the strategy is built on
    an empty history to check its options, which needs no scipy or scikit-optimize."""
    code = (
        "from hpo.demo import demo_spec\n"
        "from hpo.spec import StudySpec\n"
        f"StudySpec.model_validate(demo_spec(strategy={strategy!r}, trials=5))"
    )
    loaded = loaded_after(code)
    heavy = {"scipy", "sklearn", "skopt", "torch", "pandas", *SERVICE}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_a_strategy_loads_its_dependencies_when_it_suggests() -> None:
    """The other side: the laziness above defers the imports, it does not lose them."""
    code = (
        "from search import SearchSpace, make_strategy\n"
        "space = SearchSpace.from_dict({'x': {'type': 'float', 'low': 0, 'high': 1}})\n"
        "make_strategy('bayes', space).ask(1)"
    )
    assert {"numpy", "scipy", "skopt"} <= loaded_after(code)


def test_a_client_only_install_checks_specs_and_runs_client_commands() -> None:
    """``pip install hpo-service`` without the ``server``/``worker`` extras: their
    packages cannot be imported, yet every strategy's spec validates, a client is built
    and the CLI's client commands run as far as their help."""
    blocked = {
        "fastapi", "starlette", "uvicorn", "httptools", "uvloop", "sqlalchemy", "alembic",
        "sklearn", "skopt", "scipy", "threadpoolctl", "redis", "rq", "jinja2", "plotly",
        "torch", "pandas",
    }  # fmt: skip
    code = (
        "import sys\n"
        f"BLOCKED = {sorted(blocked)!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'no {name} (not installed)', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from hpo.demo import demo_spec\n"
        "from hpo.spec import StudySpec\n"
        "for s in ['random', 'grid', 'bayes', 'evolution', 'hyperband', 'asha']:\n"
        "    StudySpec.model_validate(demo_spec(strategy=s, trials=5))\n"
        "from hpo import Client\n"
        "Client('http://127.0.0.1:9').close()\n"
        "from typer.testing import CliRunner\n"
        "from hpo.cli.main import app\n"
        "for args in (['--help'], ['study', 'create', '--help'], ['trials', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
    )
    assert loaded_after(code).isdisjoint(blocked)
