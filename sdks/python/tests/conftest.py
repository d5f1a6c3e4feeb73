"""What the tests share: a PostgreSQL database per test module, a real
`tasker server` process on it (port 0, address read from its "listening on"
line), `tasker-worker` processes, and waiting on conditions.

PostgreSQL: `TASKER_TEST_DATABASE_URL` (else `DATABASE_URL`) names a server
and an admin database; without either, the throwaway server of the Rust
tests (`target/debug/throwaway-postgres`) is started or reused. Each module
creates `tasker_py_<random>` there and drops it at the end.

The `tasker` binary is `$TASKER_BIN`, else `target/debug/tasker` of the
repository: build it first (`scripts/test --tier python` does).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

import psycopg
import pytest

from tasker import Client

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]
TEMPLATES = REPO / "templates"
T = TypeVar("T")
# The example worker is imported as `examples.example_worker`, from any cwd.
sys.path.insert(0, str(SDK))


def wait_until(what: str, check: Callable[[], Optional[T]], timeout: float = 30.0, every: float = 0.05) -> T:
    """Calls ``check`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(every)


def tasker_bin() -> Path:
    path = Path(os.environ.get("TASKER_BIN") or REPO / "target" / "debug" / "tasker").resolve()
    if not path.exists():
        pytest.exit(f"{path} does not exist: build it with `cargo build -p tasker-cli` (or set TASKER_BIN)", 2)
    return path


def admin_url() -> str:
    url = os.environ.get("TASKER_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    throwaway = REPO / "target" / "debug" / "throwaway-postgres"
    if not throwaway.exists():
        pytest.exit("set TASKER_TEST_DATABASE_URL, or build target/debug/throwaway-postgres", 2)
    return subprocess.run([str(throwaway)], check=True, capture_output=True, text=True).stdout.strip()


def with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


class Database:
    """A fresh database of its own, dropped by :meth:`drop`."""

    def __init__(self) -> None:
        self.admin = admin_url()
        self.name = f"tasker_py_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = with_database(self.admin, self.name)

    def execute(self, sql: str, *params: Any) -> List[Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def drop(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Process:
    """A child process whose output lines are collected (and echoed to
    stderr for pytest to show on failure)."""

    def __init__(self, name: str, args: List[str], env: Dict[str, str], cwd: Path = SDK) -> None:
        self.name = name
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.popen = subprocess.Popen(
            args, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            sys.stderr.write(f"[{self.name}] {line}\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for_line(self, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(
                        f"{self.name} printed no line with {needle!r} (exit {self.popen.poll()})"
                    )
                self._cond.wait(min(left, 0.2))

    def count(self, needle: str) -> int:
        with self._cond:
            return sum(needle in line for line in self.lines)

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_") and k != "RUST_LOG"}
    env.update(extra)
    return env


class Server:
    """A `tasker server` on port 0 of ``database``, auth off."""

    def __init__(self, database: Database, **settings: str) -> None:
        env = clean_env(TASKER_AUTH_ENABLED="false", RUST_LOG="warn", **settings)
        self.process = Process(
            "server",
            [str(tasker_bin()), "server", "--listen", "127.0.0.1:0", "--node-id", "py-test",
             "--database-url", database.url],
            env,
        )
        line = self.process.wait_for_line("listening on ")
        self.url = line[line.index("http://"):].split()[0]

    def client(self) -> Client:
        return Client(self.url, token="")


def start_worker(server: Server, app: str = "examples.example_worker:app", *args: str,
                 name: str = "worker", cwd: Path = SDK) -> Process:
    """`tasker-worker app` (run in ``cwd``) against ``server``; returns once
    it registered."""
    exe = Path(sys.executable).with_name("tasker-worker")
    process = Process(
        name,
        [str(exe), app, "--server", server.url, "--log-format", "json", *args],
        clean_env(PYTHONPATH=str(SDK), PYTHONUNBUFFERED="1"),
        cwd=cwd,
    )
    process.wait_for_line('"event": "started"')
    return process


def register_examples(client: Client) -> None:
    for ns in ("examples", "orders"):
        client.create_namespace(ns)
    for path in sorted(TEMPLATES.glob("*.yaml")):
        client.register_template(path)


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    db = Database()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="module")
def server(database: Database) -> Iterator[Server]:
    server = Server(database)
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Client:
    return server.client()
