"""docker-compose.yml and the Dockerfile describe a fleet that can actually start: the
services, health ordering, GPU reservation and secrets are wired as documented, and every
``hpo`` command line they run parses against the real CLI (no Docker needed)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# ------------------------------------------------------------------------------- helpers


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (Compose allows a mapping or KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?::?-(?P<default>[^}]*))|(?::?\?(?P<required>[^}]*)))?\}"
)
#: What a required variable (``${VAR:?message}``) stands for when a test interpolates.
GIVEN = "a-value-the-operator-set"


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with no variable set: the default (or empty);
    ``${VAR:?message}`` (compose refuses to start without it): as if it were set."""
    return _INTERPOLATION.sub(
        lambda m: GIVEN if m.group("required") is not None else (m.group("default") or ""),
        value,
    )


WORKERS = ("worker-gpu0", "worker-gpu1", "worker-cpu")


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments out."""
    logical: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    result = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _dockerfile_entrypoint() -> list[str]:
    entrypoints = [args for kw, args in _instructions() if kw == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    value = json.loads(entrypoints[-1])  # exec form; the last one wins
    assert isinstance(value, list)
    return value


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _hpo_invocations(service: dict[str, Any]) -> list[list[str]]:
    """The argument lists given to ``hpo`` by a service's entrypoint + command.

    Either the image's ``hpo`` entrypoint with the command as its arguments, or a
    ``sh -c SCRIPT`` entrypoint whose script runs ``hpo ...`` (``&&``/``;``/``||``-chained,
    optionally after ``exec``).
    """
    if "entrypoint" in service:
        entrypoint = _as_list(service["entrypoint"])
    else:
        entrypoint = _dockerfile_entrypoint()
    command = _as_list(service.get("command"))
    if entrypoint == ["hpo"]:
        return [command]
    shell = entrypoint[:1] in (["sh"], ["/bin/sh"], ["bash"], ["/bin/bash"])
    if not (shell and "-c" in entrypoint):
        pytest.fail(f"unexpected entrypoint {entrypoint!r}: use the image's hpo or sh -c")
    script_and_args = entrypoint[entrypoint.index("-c") + 1 :] + command
    assert script_and_args, "`sh -c` without a script"
    invocations: list[list[str]] = []
    for segment in re.split(r"&&|\|\||;", script_and_args[0]):
        words = shlex.split(segment)
        while words and (words[0] == "exec" or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0])):
            words = words[1:]  # `exec hpo ...`, `VAR=value hpo ...`
        if words and words[0] == "hpo":
            invocations.append(words[1:])
    return invocations


def _typer_names(app: typer.Typer) -> tuple[set[str], dict[str, typer.Typer]]:
    """Command names and sub-apps (groups) registered on a Typer app."""
    commands = set()
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else None)
        if name:
            commands.add(name)
    groups = {}
    for group in app.registered_groups:
        name = group.name or (group.typer_instance.info.name if group.typer_instance else None)
        if name and group.typer_instance is not None:
            groups[name] = group.typer_instance
    return commands, groups


def _resolve(app: typer.Typer, argv: list[str]) -> list[str]:
    """The command path (e.g. ``["db", "upgrade"]``) that ``argv`` names in the Typer app,
    following registered groups; fails the test when a name is unknown."""
    path: list[str] = []
    current = app
    for word in argv:
        commands, groups = _typer_names(current)
        if word in groups:
            path.append(word)
            current = groups[word]
            continue
        if word in commands:
            return [*path, word]
        known = sorted(commands | set(groups))
        where = f"hpo {' '.join(path)}".strip()
        pytest.fail(f"`{where} {word}` is not a command; {where} has: {', '.join(known)}")
    pytest.fail(f"`hpo {' '.join(argv)}` names a group, not a command")


# ----------------------------------------------------------------------------- compose


def test_compose_has_the_services() -> None:
    assert {"postgres", "redis", "server", *WORKERS} <= set(_services())


def test_postgres_and_redis_have_healthchecks_and_postgres_a_named_volume() -> None:
    services = _services()
    pg, redis = services["postgres"], services["redis"]
    assert str(pg["image"]).startswith("postgres:15")
    assert "pg_isready" in " ".join(_as_list(pg["healthcheck"]["test"]))
    volume_names = {v.split(":", 1)[0] for v in pg["volumes"]}
    assert volume_names & set(_compose().get("volumes") or {}), "postgres data needs a volume"

    assert str(redis["image"]).startswith("redis:7")
    assert _as_list(redis["healthcheck"]["test"])[-2:] == ["redis-cli", "ping"]


def test_server_starts_after_healthy_postgres_and_redis() -> None:
    server = _services()["server"]
    depends = server["depends_on"]
    assert isinstance(depends, dict), "depends_on needs the long form to carry a condition"
    for dep in ("postgres", "redis"):
        assert depends[dep]["condition"] == "service_healthy", dep
    assert "8765:8765" in [str(p) for p in server["ports"]]
    assert "/healthz" in " ".join(_as_list(server["healthcheck"]["test"]))

    env = _environment(server)
    db_url = _interpolate(env["HPO_DATABASE_URL"])
    assert db_url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in db_url
    assert _interpolate(env["HPO_REDIS_URL"]).startswith("redis://redis:6379")


def test_secrets_must_be_given_no_guessable_fallback() -> None:
    """The server publishes a port: its tokens and the database password have no
    defaults (``${VAR:?...}``: compose refuses to start without them)."""
    assert "change-me" not in COMPOSE_FILE.read_text()
    services = _services()
    server_env = _environment(services["server"])
    for var in ("HPO_API_TOKEN", "HPO_WORKER_TOKEN"):
        assert re.fullmatch(r"\$\{" + var + r":\?[^}]+\}", server_env[var]), server_env[var]
    assert "${POSTGRES_PASSWORD:?" in server_env["HPO_DATABASE_URL"]
    assert _environment(services["postgres"])["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    for name in WORKERS:
        assert _environment(services[name])["HPO_WORKER_TOKEN"] == server_env["HPO_WORKER_TOKEN"]


@pytest.mark.parametrize("name", WORKERS)
def test_worker_holds_no_database_or_admin_credentials(name: str) -> None:
    # DESIGN principle 3: workers talk to the server over HTTP only.
    worker = _services()[name]
    env = _environment(worker)
    assert "HPO_DATABASE_URL" not in env
    assert "HPO_API_TOKEN" not in env
    assert env["HPO_SERVER_URL"] == "http://server:8765"
    assert _interpolate(env["HPO_REDIS_URL"]).startswith("redis://redis:6379")
    assert _interpolate(env["HPO_WORKER_POOL"]) == "default"
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["server"]["condition"] == "service_healthy"


def test_each_gpu_worker_reserves_only_its_own_gpu() -> None:
    """``count: all`` would give every worker every GPU; each reserves its own device
    ids, no two the same, and the CPU worker reserves none."""
    services = _services()
    taken: list[str] = []
    for name in ("worker-gpu0", "worker-gpu1"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        (nvidia,) = [d for d in devices if d.get("driver") == "nvidia"]
        assert "gpu" in nvidia["capabilities"]
        assert "count" not in nvidia, f"{name} reserves by count, not by device"
        taken += [str(i) for i in nvidia["device_ids"]]
    assert sorted(taken) == ["0", "1"]
    assert "deploy" not in services["worker-cpu"]


def test_server_and_worker_build_the_repository_image() -> None:
    services = _services()
    for name in ("server", *WORKERS):
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (COMPOSE_FILE.parent / context / "Dockerfile").resolve() == DOCKERFILE


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("server", [["db", "upgrade"], ["server"]]),
        ("worker-gpu0", [["worker"]]),
        ("worker-cpu", [["worker"]]),
    ],
)
def test_hpo_commands_in_compose_exist_in_the_cli(
    service: str, expected: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``hpo`` command line a service runs names real (sub)commands and parses with
    the service's environment (unknown options or bad values fail here, not in prod)."""
    from hpo.cli.main import app

    svc = _services()[service]
    invocations = _hpo_invocations(svc)
    paths = [_resolve(app, argv) for argv in invocations]
    assert paths == expected, f"{service} runs {invocations}"

    for var, value in _environment(svc).items():
        monkeypatch.setenv(var, _interpolate(value))
    root = typer.main.get_command(app)
    for argv, path in zip(invocations, paths, strict=True):
        cmd: Any = root  # a click-style command (Typer may vendor its own click)
        for name in path:
            cmd = cmd.commands[name]
        args = argv[len(path) :]
        try:
            cmd.make_context(" ".join(["hpo", *path]), list(args))  # parses, runs nothing
        except Exception as exc:  # click's UsageError/BadParameter, vendored or not
            message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
            pytest.fail(f"`hpo {' '.join(argv)}` does not parse: {message}")


# ---------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_user_port_and_entrypoint() -> None:
    instructions = _instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [args for kw, args in instructions if kw == "USER"]
    assert users and users[-1] == "hpo", "the image must not run as root"
    assert any(kw == "EXPOSE" and "8765" in args.split() for kw, args in instructions)
    assert _dockerfile_entrypoint() == ["hpo"]


def test_dockerfile_installs_torch_from_a_build_arg_index_before_the_project() -> None:
    instructions = _instructions()
    args = {a.split("=", 1)[0]: a.partition("=")[2] for kw, a in instructions if kw == "ARG"}
    assert args.get("TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cpu"
    runs = [(i, a) for i, (kw, a) in enumerate(instructions) if kw == "RUN"]
    torch_at = [i for i, a in runs if "pip install" in a and "torch" in a]
    extras = {i: re.search(r"\.\[([\w,-]+)\]", a) for i, a in runs if "pip install" in a}
    project_at = [
        i for i, m in extras.items() if m and {"all", "postgres"} <= set(m.group(1).split(","))
    ]
    assert torch_at, "no `pip install torch` RUN"
    assert project_at, "no `pip install .[all,postgres]` RUN (the service, the worker)"
    torch_run = instructions[torch_at[0]][1]
    assert re.search(r"--index-url\s+\"?\$\{?TORCH_INDEX_URL\}?", torch_run), torch_run
    assert torch_at[0] < project_at[0], "torch must be installed before the project"


def test_dockerfile_copies_every_package_the_project_ships() -> None:
    """A package left out of the image's COPY lines would silently not be installed."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*").rstrip(".") for p in patterns}
    copied: set[str] = set()
    for kw, args in _instructions():
        if kw == "COPY":
            sources = [w for w in shlex.split(args)[:-1] if not w.startswith("--")]
            copied |= {Path(src).parts[0] if src not in (".", "./") else "." for src in sources}
    assert "pyproject.toml" in copied or "." in copied
    if "." not in copied:
        assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


def test_the_image_can_run_the_examples() -> None:
    """The examples are in the image, and each entrypoint an example names imports
    from a folder on the image's PYTHONPATH."""
    instructions = _instructions()
    copies = [shlex.split(a) for kw, a in instructions if kw == "COPY"]
    workdirs = [a for kw, a in instructions if kw == "WORKDIR"]
    app_dir = workdirs[0]
    assert ["examples", "./examples"] in copies
    env_lines = " ".join(a for kw, a in instructions if kw == "ENV")
    assert f"PYTHONPATH={app_dir}" in env_lines
    for spec_file in sorted((ROOT / "examples").glob("*.yaml")):
        spec = yaml.safe_load(spec_file.read_text())
        entrypoint = (spec.get("train") or {}).get("entrypoint")
        if entrypoint:
            module = entrypoint.split(":")[0]
            assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), entrypoint
            assert module.split(".")[0] == "examples", f"{spec_file.name}: {entrypoint}"
