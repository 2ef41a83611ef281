"""Shared fixtures: a real `csms serve` process on a real SQLite file or a real
PostgreSQL database that the suite creates and drops itself.

Outside CI a missing PostgreSQL skips its tests with the reason; under
CI=true it fails them, so they can never silently not run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN = os.environ.get("CSMS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
API_TOKEN = "test-token"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-frames", type=int, default=20000,
                     help="mutated frames tests/e2e/test_fuzzing.py sends per store (default 20000)")
    parser.addoption("--fuzz-seed", type=int, default=None,
                     help="the fuzzer's seed (default: a fresh one, printed)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as failure:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {POSTGRES_ADMIN}: {failure}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_ADMIN}: {failure}")


def make_postgres_database() -> tuple[str, str]:
    """Creates an empty database; returns (store url, name)."""
    name = f"csms_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_postgres_database(name: str) -> None:
    with postgres_admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'csms.sqlite3'}"
        return
    url, name = make_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


class Server:
    """A `csms serve` subprocess. Ready once it printed its 'Running on' line."""

    def __init__(self, store: str, *extra: str) -> None:
        self.store = store
        self.extra = list(extra)
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, charge_point_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/{charge_point_id}"

    def start(self) -> Server:
        command = [
            sys.executable, "-m", "app", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--store", self.store, "--api-token", API_TOKEN, *self.extra,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1", CSMS_LOG_LEVEL="WARNING")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "Running on" in line:
                # Keep draining its output so a chatty server never blocks on the pipe.
                threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
                return self
        raise RuntimeError("csms serve exited before it was ready:\n" + "".join(self.output))

    def _drain(self, stream: Iterator[str]) -> None:
        for line in stream:
            self.output.append(line)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> Server:
        self.stop()
        return self.start()


@pytest.fixture
def server_factory() -> Iterator[type]:
    started: list[Server] = []

    class Factory:
        @staticmethod
        def start(store: str, *extra: str) -> Server:
            server = Server(store, *extra).start()
            started.append(server)
            return server

    yield Factory
    for server in started:
        server.stop()


@pytest.fixture
def server(store_url: str, server_factory: type) -> Server:
    """A running server on a fresh store, with a short call timeout for tests."""
    return server_factory.start(store_url, "--call-timeout", "2")
