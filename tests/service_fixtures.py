"""Real Redis and PostgreSQL servers for tests (a pytest plugin: no fakes, no mocks).

Load it with ``pytest_plugins = ["service_fixtures"]`` (``tests/`` is on ``pythonpath``).

Fixtures:

- ``redis_server`` (session): a ``redis-server`` on a free loopback port, no persistence.
  A :class:`RedisServer` with ``.url``, ``.port``, ``.flushall()``, ``.stop()``, ``.start()``
  (``start`` after ``stop`` comes back on the same port).
- ``redis_url`` (function): the server's URL, FLUSHALLed before the test.
- ``postgres_server`` (session): a PostgreSQL cluster made with ``initdb`` in a temporary
  folder and started with ``pg_ctl`` on a free loopback port (trust auth, user
  ``postgres``, durability off for speed). A :class:`PostgresServer` with ``.port``,
  ``.pid``, ``.admin_url(db)``, ``.create_database(name, template=None)``,
  ``.drop_database(name)``.
  PostgreSQL refuses to run as root, so when the tests run as root the cluster is owned
  by and run as the ``postgres`` system user (through ``runuser``/``su``).
- ``postgres_url`` (function): a fresh, uniquely named, empty database for one test, as a
  ``postgresql+psycopg://`` SQLAlchemy URL; dropped (connections and all) afterwards.

A missing binary skips the tests that need it, with the reason; with
``HPO_REQUIRE_SERVICES=1`` (CI) it fails them instead, so CI cannot pass by skipping.
A server that does not come up raises :class:`ServiceError` with the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    import psycopg
    import redis

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "chromium",
    "postgres_server",
    "postgres_url",
    "redis_server",
    "redis_url",
    "running_postgres",
    "running_redis",
]

REQUIRE_ENV = "HPO_REQUIRE_SERVICES"
PG_SYSTEM_USER = "postgres"  # PostgreSQL's superuser role is also named postgres (initdb -U)
LOG_TAIL_LINES = 40


class ServiceError(RuntimeError):
    """A test service failed to start or stop; the message carries its log tail."""


def _unavailable(reason: str) -> NoReturn:
    """Skip (developer machine) or fail (CI: ``HPO_REQUIRE_SERVICES=1``) for ``reason``."""
    if os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this is an error, not a skip)")
    pytest.skip(reason)


def _require_binary(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        _unavailable(f"`{name}` not found on PATH; {hint}")
    return path


def _postgres_bindir() -> Path:
    """The folder with initdb, pg_ctl and postgres: from PATH, else the newest Debian/Ubuntu
    ``/usr/lib/postgresql/<major>/bin`` (apt's postgresql package keeps them off PATH)."""
    names = ("initdb", "pg_ctl", "postgres")
    found = [shutil.which(name) for name in names]
    if all(found):
        # Symlinks (e.g. /usr/local/bin -> /usr/lib/postgresql/15/bin) resolve to the real
        # folder; the three must come from one installation.
        dirs = {Path(p).resolve().parent for p in found if p}
        if len(dirs) == 1:
            return dirs.pop()
    candidates = sorted(
        (d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").exists()),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else -1,
    )
    for bindir in reversed(candidates):
        if all((bindir / name).exists() for name in names):
            return bindir
    missing = [name for name, path in zip(names, found, strict=True) if not path]
    _unavailable(
        f"PostgreSQL server binaries not found ({', '.join(missing) or 'mixed installations'} "
        "on PATH, nothing in /usr/lib/postgresql/*/bin); install PostgreSQL 15 "
        "(apt-get install postgresql-15)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


# --------------------------------------------------------------------------------- Redis


class RedisServer:
    """One ``redis-server`` child process on a fixed loopback port.

    Contract: after ``start()`` returns, the server answers PING on ``url``; ``stop()``
    ends the process and waits for it; ``start()`` may be called again after ``stop()``
    and binds the same port, so clients holding ``url`` reconnect to the new process.
    Nothing is persisted (no RDB, no AOF): a restart comes back empty.
    """

    def __init__(self, binary: str, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.log_path = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> redis.Redis:
        """A new ``redis.Redis`` client for ``url`` (the caller closes it)."""
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def start(self, timeout: float = 15.0) -> None:
        """Start the server (no-op when running) and wait until it answers PING."""
        if self.running:
            return
        cmd = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ServiceError(
                    f"redis-server exited with code {code} (port {self.port}); "
                    f"log tail:\n{_log_tail(self.log_path)}"
                )
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.RedisError as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise ServiceError(
            f"redis-server on port {self.port} did not answer PING within {timeout}s "
            f"(last error: {last_error!r}); log tail:\n{_log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); no-op when stopped."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def flushall(self) -> None:
        """Delete every key in every Redis database of this server."""
        with self.client() as client:
            client.flushall()


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port until the block ends (then stopped and
    cleaned up). Usable outside pytest too (the benchmarks start theirs with it)."""
    binary = _require_binary("redis-server", "install it (apt-get install redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="hpo-redis-"))
    server = RedisServer(binary, workdir)
    try:
        for attempt in range(1, 4):  # the picked port may be taken before redis binds it
            try:
                server.start()
                break
            except ServiceError:
                if attempt == 3 or "Address already in use" not in _log_tail(server.log_path):
                    raise
                server.port = free_port()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session (stopped and cleaned up at the end)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session Redis's URL, emptied (FLUSHALL) for this test; restarted if a previous
    test left it stopped."""
    redis_server.start()
    redis_server.flushall()
    return redis_server.url


# ---------------------------------------------------------------------------- PostgreSQL


def _traversable_by_all(path: Path) -> bool:
    """Whether every folder from / down to ``path`` can be entered by any user."""
    for folder in [path, *path.parents]:
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class PostgresServer:
    """A throw-away PostgreSQL cluster under ``root`` on a loopback TCP port.

    Contract: after ``start()`` returns, ``admin_url()`` accepts connections as the
    superuser ``postgres`` without a password (trust auth, loopback and the private unix
    socket only). Durability is off (fsync, synchronous_commit, full_page_writes): fine
    for tests, never for data that matters. ``stop()`` is an immediate shutdown.
    """

    def __init__(self, bindir: Path, root: Path, run_as: str | None) -> None:
        self.bindir = bindir  # holds initdb, pg_ctl and postgres
        self.root = root
        self.run_as = run_as  # system user that owns and runs the cluster; None: ourselves
        self.datadir = root / "data"
        self.sockdir = root / "sock"
        self.log_path = root / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"

    # -- URLs

    def admin_url(self, db: str = "postgres") -> str:
        """SQLAlchemy URL of database ``db`` as the superuser."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{db}"

    def dsn(self, db: str = "postgres") -> str:
        """libpq connection string (for ``psycopg.connect``) of database ``db``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={db} connect_timeout=5"

    @property
    def pid(self) -> int:
        """The postmaster's process id (first line of ``postmaster.pid``)."""
        return int((self.datadir / "postmaster.pid").read_text().split()[0])

    # -- lifecycle

    def _cmd(self, argv: Sequence[str]) -> list[str]:
        if self.run_as is None:
            return list(argv)
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self.run_as, "--", *argv]
        return ["su", self.run_as, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run(self, argv: Sequence[str], what: str, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.setdefault("LC_ALL", "C")
        try:
            # cwd: the postgres user may not be allowed into our working directory.
            result = subprocess.run(
                self._cmd(argv),
                cwd=self.root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(
                f"{what} timed out after {timeout}s; log tail:\n{_log_tail(self.log_path)}"
            ) from exc
        if result.returncode != 0:
            raise ServiceError(
                f"{what} failed (exit {result.returncode}): {shlex.join(self._cmd(argv))}\n"
                f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}\n"
                f"server log tail:\n{_log_tail(self.log_path)}"
            )

    def init(self) -> None:
        """Create the cluster (``initdb``) owned by ``run_as``."""
        self.sockdir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            for path in (self.root, self.sockdir, self.log_path):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.datadir),
                "-A", "trust",
                "-U", self.user,
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
            timeout=120,
        )  # fmt: skip

    def start(self, timeout: float = 60.0, port_attempts: int = 3) -> None:
        """Start the postmaster and wait until a real connection succeeds.

        The free port is picked before the server binds it; should another process take
        it in between, the start is retried on a new port (``port_attempts`` in all).
        """
        for attempt in range(1, port_attempts + 1):
            try:
                self._start_once(timeout)
                return
            except ServiceError:
                if attempt == port_attempts or "Address already in use" not in _log_tail(
                    self.log_path, 10
                ):
                    raise
                self.port = free_port()

    def _start_once(self, timeout: float) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.sockdir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D", str(self.datadir),
                "-l", str(self.log_path),
                "-o", options,
                "-w",
                "-t", str(int(timeout)),
                "start",
            ],
            "pg_ctl start",
            timeout=timeout + 10,
        )  # fmt: skip
        self._wait_connectable(timeout)

    def _wait_connectable(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn()) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                last_error = exc
                time.sleep(0.1)
        raise ServiceError(
            f"PostgreSQL on port {self.port} accepts no connection within {timeout}s "
            f"(last error: {last_error!r}); log tail:\n{_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Immediate shutdown; no-op when the cluster is not running."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w",
             "stop"],
            "pg_ctl stop",
            timeout=60,
        )  # fmt: skip

    # -- databases

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create the database ``name``, empty or, with ``template``, a copy of that
        database (which must have no open connection); return its SQLAlchemy URL."""
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with _psycopg_admin(self) as conn:
            conn.execute(query)
        return self.admin_url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, terminating any connection still open to it."""
        from psycopg import sql

        with _psycopg_admin(self) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def _psycopg_admin(server: PostgresServer) -> Iterator[psycopg.Connection]:
    """An autocommit superuser connection to the ``postgres`` database (CREATE/DROP
    DATABASE cannot run inside a transaction)."""
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        yield conn


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server until the block ends, then removed (data and all). Usable
    outside pytest too (the benchmarks start theirs with it)."""
    bindir = _postgres_bindir()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[postgres]')")

    run_as: str | None = None
    base = Path(tempfile.gettempdir())
    if os.geteuid() == 0:
        run_as = PG_SYSTEM_USER
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            _unavailable(
                f"running as root, and PostgreSQL refuses root: no `{run_as}` system user "
                "to run it as (useradd --system postgres)"
            )
        if shutil.which("runuser") is None and shutil.which("su") is None:
            _unavailable("running as root but neither `runuser` nor `su` is available")
        if not _traversable_by_all(base):
            base = Path("/tmp")  # the postgres user must be able to reach its data folder
    # Short path: the unix socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="hpo-pg-", dir=base))
    server = PostgresServer(bindir, root, run_as)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session, removed (data and all) at the end."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database for this test (``postgresql+psycopg://`` URL), dropped after,
    even when the test left connections open."""
    name = f"test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",  # no internet: no update or sync calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """The system Chromium (``apt-get install chromium``) driven by Playwright through
    ``executable_path``: no browser is ever downloaded. Missing Chromium or Playwright
    skips, or fails under ``HPO_REQUIRE_SERVICES=1``."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("`chromium` not found on PATH; apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install 'hpo-service[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()
