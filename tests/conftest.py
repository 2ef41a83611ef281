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

from tests.server_output import LIVE_SERVERS, TRACEBACK_EXCUSE

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "logs_traceback(why): this test makes its server log a traceback on purpose, for the reason given"
    )


class Server:
    """A `csms serve` subprocess. Ready once it printed its 'Running on' line.

    It keeps everything the server printed. A traceback in it fails the test
    that was running when it was printed (checked after each test) or, at the
    latest, the fixture that stops the server (`check_output()`); a test that
    provokes one on purpose says so with `@pytest.mark.logs_traceback("why")`.
    """

    def __init__(self, store: str, *extra: str) -> None:
        self.store = store
        self.extra = list(extra)
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._drains: list[threading.Thread] = []
        # Variables for the server's environment; CSMS_STORE or CSMS_API_TOKEN here replace the option.
        self.environment: dict[str, str] = {}
        self._judged: set[int] = set()  # the output lines of tracebacks already excused or reported
        # A test marked logs_traceback ran last: what it provoked may still be on its way through the pipe.
        self._excusing = False

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, charge_point_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/{charge_point_id}"

    def start(self) -> Server:
        command = [
            sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            *([] if "CSMS_STORE" in self.environment else ["--store", self.store]),
            *([] if "CSMS_API_TOKEN" in self.environment else ["--api-token", API_TOKEN]),
            *self.extra,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1", CSMS_LOG_LEVEL="WARNING", **self.environment)
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "Running on" in line:
                # Keep draining its output so a chatty server never blocks on the pipe.
                drain = threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True)
                drain.start()
                self._drains.append(drain)
                if self not in LIVE_SERVERS:
                    LIVE_SERVERS.append(self)
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

    def tracebacks(self, since: int = 0) -> dict[int, str]:
        """Each traceback printed from output line `since` on, by its line, with the log line before it."""
        lines = list(self.output)
        found = {}
        for index in range(since, len(lines)):
            if lines[index].startswith("Traceback (most recent call last)"):
                end = index + 1
                while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
                    end += 1
                found[index] = "".join(lines[max(index - 1, 0):end + 1])
        return found

    def judge_tracebacks(self, since: int = 0) -> None:
        """Fails the running test on a traceback printed since line `since`, unless it is excused."""
        found = {index: text for index, text in self.tracebacks(since).items() if index not in self._judged}
        self._judged |= set(found)
        if found and not TRACEBACK_EXCUSE and not self._excusing:
            pytest.fail(f"csms serve on {self.store} logged {len(found)} traceback(s):\n" + "\n".join(found.values()),
                        pytrace=False)

    def excuse_until_next_test(self) -> None:
        self._excusing = True

    def start_judging(self) -> None:
        """A new test begins: what the excused test before it provoked has arrived by now, and stays excused."""
        if self._excusing:
            self._judged |= set(self.tracebacks())
            self._excusing = False

    def check_output(self) -> None:
        """Stops the server and fails the test on any traceback in its output not yet judged."""
        self.stop()
        for drain in self._drains:
            drain.join(timeout=20)  # the pipe closes once the process is gone
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)
        self.judge_tracebacks()


@pytest.fixture(autouse=True)
def no_server_tracebacks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test during which a server printed a traceback, unless marked `logs_traceback("why")`."""
    marker = request.node.get_closest_marker("logs_traceback")
    if marker is not None:
        assert marker.args and str(marker.args[0]).strip(), "logs_traceback needs the reason, as its argument"
        TRACEBACK_EXCUSE.append(str(marker.args[0]))
    for server in LIVE_SERVERS:
        server.start_judging()
    since = {id(server): len(server.output) for server in LIVE_SERVERS}
    try:
        yield
        for server in list(LIVE_SERVERS):
            server.judge_tracebacks(since.get(id(server), 0))
    finally:
        if TRACEBACK_EXCUSE:
            for server in LIVE_SERVERS:
                server.excuse_until_next_test()
        TRACEBACK_EXCUSE.clear()


@pytest.fixture
def server_factory() -> Iterator[type]:
    started: list[Server] = []

    class Factory:
        @staticmethod
        def start(store: str, *extra: str, environment: dict[str, str] | None = None) -> Server:
            server = Server(store, *extra)
            server.environment = dict(environment or {})
            server.start()
            started.append(server)
            return server

    yield Factory
    for server in started:
        server.stop()
    for server in started:
        server.check_output()


@pytest.fixture
def server(store_url: str, server_factory: type) -> Server:
    """A running server on a fresh store, with a short call timeout for tests."""
    return server_factory.start(store_url, "--call-timeout", "2")
