"""The system under test: a fresh store and a `csms serve` process we own.

The server is ``python -m app serve`` run from the repository root with the
shipped durability settings; only the port, store, token, heartbeat
interval and (``--workers N``) its number of processes are chosen here. It
is started with its soft RLIMIT_NOFILE raised to the hard limit
(``preexec_fn``), so 10,000 connections fit.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_POSTGRES_ADMIN = os.environ.get("CSMS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- /proc ---------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, all its threads included, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the workers of `csms serve --workers N`)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == pid:  # field 4 of proc(5): the parent
            found.append(int(entry))
    return found


def nofile_limit(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return f"{parts[3]}/{parts[4]}"
    except FileNotFoundError:
        return None
    return None


def _raise_nofile() -> None:  # runs in the child before exec
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- stores --------------------------------------------------------------------------------


@dataclass
class Store:
    kind: str
    url: str
    cleanup: Callable[[], None] = field(repr=False)
    dbname: str | None = None
    admin_url: str | None = None


def make_store(kind: str, tmpdir: str | None = None, postgres_admin: str = DEFAULT_POSTGRES_ADMIN) -> Store:
    """A fresh, empty store: a SQLite file in a new temp dir, or a new PostgreSQL database."""
    if kind == "sqlite":
        directory = tempfile.mkdtemp(prefix="csms_bench_", dir=tmpdir)
        return Store("sqlite", f"sqlite:///{directory}/csms.sqlite3",
                     lambda: shutil.rmtree(directory, ignore_errors=True))
    if kind == "postgresql":
        import psycopg

        name = f"csms_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(postgres_admin, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        base = postgres_admin.rsplit("/", 1)[0]
        return Store("postgresql", f"{base}/{name}", drop, dbname=name, admin_url=postgres_admin)
    raise ValueError(f"unknown store kind {kind!r} (sqlite or postgresql)")


def postgres_backend_pids(store: Store) -> list[int]:
    """The PostgreSQL backends serving the store's database (to add their CPU)."""
    if store.kind != "postgresql" or store.admin_url is None:
        return []
    import psycopg

    try:
        with psycopg.connect(store.admin_url, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (store.dbname,)).fetchall()
    except Exception:
        return []
    return [int(row[0]) for row in rows]


# ---- the server process ------------------------------------------------------------------


class ServerProcess:
    def __init__(self, store: Store, port: int, token: str, heartbeat_interval: int, log_path: Path,
                 extra: list[str] | None = None, root: Path = ROOT, wrapper: list[str] | None = None) -> None:
        self.root = Path(root)
        self.wrapper = wrapper or []  # a command the server runs under, e.g. valgrind
        self.store = store
        self.port = port
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.log_path = log_path
        self.extra = extra or []
        self.process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.started_at: float | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            *self.wrapper, sys.executable, "-m", "app", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--store", self.store.url, f"--api-token={self.token}",  # a token may start with "-"
            "--heartbeat-interval", str(self.heartbeat_interval),
            *self.extra,
        ]

    async def start(self, timeout: float = 120.0) -> float:
        """Starts the server; returns when it listens (time.monotonic())."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("CSMS_STORE", None)
        log = open(self.log_path, "ab")
        log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(self.command())}\n".encode())
        self.process = await asyncio.create_subprocess_exec(
            *self.command(), cwd=self.root, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, preexec_fn=_raise_nofile,
        )
        assert self.process.stdout is not None
        stdout = self.process.stdout
        ready = asyncio.get_running_loop().create_future()

        async def drain() -> None:
            try:
                async for line in stdout:
                    log.write(line)
                    if not ready.done() and b"Running on" in line:
                        ready.set_result(time.monotonic())
            finally:
                log.close()
                if not ready.done():
                    ready.set_exception(RuntimeError(f"csms serve exited before it was ready; see {self.log_path}"))

        self._drain = asyncio.ensure_future(drain())
        try:
            started_at: float = await asyncio.wait_for(ready, timeout)
        except BaseException:
            await self.stop(5)
            raise
        self.started_at = started_at
        return started_at

    async def stop(self, timeout: float = 60.0) -> tuple[float, bool]:
        """SIGTERM, then SIGKILL after ``timeout``; returns (seconds to exit, was killed)."""
        if self.process is None or self.process.returncode is not None:
            return 0.0, False
        begun = time.monotonic()
        killed = False
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            killed = True
            await self.process.wait()
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)
        return time.monotonic() - begun, killed

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)

    def rss_kib(self) -> int | None:
        """The server's RSS, its workers' included (with --workers N, the parent serves nothing)."""
        own = rss_kib(self.pid)
        return None if own is None else own + sum(rss_kib(child) or 0 for child in child_pids(self.pid))

    def cpu_seconds(self) -> float | None:
        """The server's CPU seconds, its workers' included."""
        own = cpu_seconds(self.pid)
        return None if own is None else own + sum(cpu_seconds(child) or 0.0 for child in child_pids(self.pid))

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


class Api:
    """The operator REST API, just what the benchmark needs."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        self.session = aiohttp.ClientSession(headers=self.headers,
                                             connector=aiohttp.TCPConnector(limit=64))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        await self.session.close()

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.put(self.base + path, json=body) as response:
            if response.status >= 300:
                raise RuntimeError(f"PUT {path}: HTTP {response.status}: {await response.text()}")
            return await response.json()  # type: ignore[no-any-return]

    async def get(self, path: str) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.get(self.base + path) as response:
            if response.status >= 300:
                raise RuntimeError(f"GET {path}: HTTP {response.status}: {await response.text()}")
            return await response.json()  # type: ignore[no-any-return]

    async def register_charge_points(self, ids: list[str], concurrency: int = 32,
                                     progress: Callable[[int], None] | None = None) -> None:
        queue = list(reversed(ids))
        done = 0

        async def work() -> None:
            nonlocal done
            while queue:
                cp_id = queue.pop()
                await self.put(f"/api/chargepoints/{cp_id}", {"description": "bench"})
                done += 1
                if progress is not None and done % 1000 == 0:
                    progress(done)

        await asyncio.gather(*(work() for _ in range(min(concurrency, len(ids)))))
