"""AmpLedger benchmark: `python -m bench.run --standard` (see bench/README.md).

Starts its own `csms serve` on a fresh store, registers the charge points and
an idTag through the REST API, drives N simulated charge points over real
WebSockets from one or more load-generator processes (bench.loadgen), and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.hist import Histogram
from bench.loadgen import install_uvloop, raise_nofile_limit
from bench.ocpp import DEFAULT_ID_TAG, DEFAULT_MIX, ChargePoint, parse_mix
from bench.server import (
    DEFAULT_POSTGRES_ADMIN,
    ROOT,
    Api,
    ServerProcess,
    Store,
    child_pids,
    cpu_seconds,
    free_port,
    make_store,
    nofile_limit,
    postgres_backend_pids,
)

now = time.monotonic
SCENARIOS = ("throughput", "latency", "scale", "scale-out")
PREFIX = "BENCH-"
PROBE_ID = "BENCH-PROBE"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---- load-generator processes ------------------------------------------------------------


class WorkerHandle:
    """One bench.loadgen process, spoken to with JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process, count: int) -> None:
        self.process = process
        self.count = count
        self._seq = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, url: str, first: int, count: int, opts: argparse.Namespace) -> WorkerHandle:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--url", url, "--prefix", PREFIX,
            "--first", str(first), "--count", str(count), "--id-tag", opts.id_tag,
            "--meter-samples", str(opts.meter_samples),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
        )
        return cls(process, count)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            message = orjson.loads(line)
            future = self._pending.pop(message.get("seq"), None)
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RuntimeError(f"load generator {self.process.pid} exited"))

    @property
    def pid(self) -> int:
        return self.process.pid

    async def request(self, cmd: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self._seq += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = future
        self.process.stdin.write(orjson.dumps({"seq": self._seq, "cmd": cmd, **fields}) + b"\n")
        await self.process.stdin.drain()
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise RuntimeError(f"load generator {self.pid}: {cmd} failed: {reply['error']}")
        return reply

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.request("close", timeout=60)
            except Exception:
                pass
            if self.process.stdin is not None:
                self.process.stdin.close()  # end of commands: the worker's loop ends
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await asyncio.gather(self._reader, return_exceptions=True)


class Workers:
    def __init__(self, handles: list[WorkerHandle]) -> None:
        self.handles = handles

    @classmethod
    async def start(cls, url: str, n: int, count: int, opts: argparse.Namespace) -> Workers:
        sizes = [n // count + (1 if i < n % count else 0) for i in range(count)]
        handles, first = [], 0
        for size in sizes:
            if size:
                handles.append(await WorkerHandle.start(url, first, size, opts))
            first += size
        workers = cls(handles)
        infos = await workers.all("info", timeout=60)
        say(f"{len(handles)} load generator(s): pids {[i['pid'] for i in infos]}, loop {infos[0]['loop']}, "
            f"nofile {infos[0]['nofile'][0]}")
        return workers

    async def all(self, cmd: str, timeout: float | None = None, **fields: Any) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(h.request(cmd, timeout, **fields) for h in self.handles)))

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(h.pid) or 0.0 for h in self.handles)

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self.handles), return_exceptions=True)


def auto_workers(opts: argparse.Namespace, n: int) -> int:
    if opts.load_workers != "auto":
        return max(1, int(opts.load_workers))
    return max(1, min(4, math.ceil(n / 5000)))


# ---- helpers -----------------------------------------------------------------------------------


def merge_hists(items: list[dict[str, Any]]) -> Histogram:
    total = Histogram()
    for item in items:
        total.merge(Histogram.from_json(item))
    return total


def merge_errors(items: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    samples: list[str] = []
    for item in items:
        for kind, count in item["counts"].items():
            counts[kind] = counts.get(kind, 0) + count
        samples.extend(item["samples"])
    return {"counts": counts, "samples": samples[:5], "total": sum(counts.values())}


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


async def sleep_until(moment: float) -> None:
    delay = moment - now()
    if delay > 0:
        await asyncio.sleep(delay)


class CpuWindow:
    """utime+stime of the server (and PostgreSQL backends, and load generators) over a window."""

    def __init__(self, server: ServerProcess, store: Store, workers: Workers) -> None:
        self.server, self.store, self.workers = server, store, workers
        self.begin: dict[str, float] = {}
        self.pg_pids: list[int] = []

    def _sample(self) -> dict[str, float]:
        return {
            "t": now(),
            "server": self.server.cpu_seconds() or 0.0,
            "db": sum(cpu_seconds(pid) or 0.0 for pid in self.pg_pids),
            "client": self.workers.cpu_seconds(),
        }

    def start(self) -> None:
        self.pg_pids = postgres_backend_pids(self.store)
        self.begin = self._sample()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        return {key: end[key] - self.begin[key] for key in end}


@dataclass
class System:
    """A fresh store and a server with N charge points and the idTag registered."""

    opts: argparse.Namespace
    kind: str
    log_dir: Path
    heartbeat_interval: int = 300
    server_workers: int = 1  # csms serve --workers
    store: Store | None = None
    server: ServerProcess | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    async def up(self, n: int, probe: bool = False) -> None:
        self.store = make_store(self.kind, self.opts.tmpdir, self.opts.postgres_admin)
        log = self.log_dir / f"server-{self.kind}-{int(time.time() * 1000)}.log"
        extra = ["--workers", str(self.server_workers)] if self.server_workers != 1 else []
        self.server = ServerProcess(self.store, free_port(), self.token, self.heartbeat_interval, log,
                                    extra=extra, root=self.opts.server_root)
        began = now()
        await self.server.start()
        workers = f" with {self.server_workers} workers" if self.server_workers != 1 else ""
        say(f"csms serve pid {self.server.pid}{workers} on {self.kind} ready in {now() - began:.1f} s "
            f"(nofile {nofile_limit(self.server.pid)}; log {log})")
        began = now()
        async with Api(self.server.http, self.token) as api:
            await api.put(f"/api/idtags/{self.opts.id_tag}", {"status": "Accepted"})
            ids = [f"{PREFIX}{i:06d}" for i in range(n)] + ([PROBE_ID] if probe else [])
            await api.register_charge_points(ids, progress=lambda k: say(f"  registered {k}/{len(ids)}"))
        say(f"registered {n} charge points{' and a probe' if probe else ''} and idTag {self.opts.id_tag} "
            f"in {now() - began:.1f} s")

    async def down(self) -> None:
        if self.server is not None:
            await self.server.stop(120)
        if self.store is not None:
            self.store.cleanup()


async def connect_storm(system: System, workers: Workers, n: int) -> dict[str, Any]:
    """All charge points connect and boot at once; returns the boot-storm figures."""
    assert system.server is not None
    start_at = now() + 0.5
    cpu_before = system.server.cpu_seconds() or 0.0
    opts = system.opts
    spacing = len(workers.handles) / opts.connect_rate if opts.connect_rate > 0 else 0.0
    replies = await workers.all("connect", start_at=start_at, deadline=start_at + opts.connect_deadline,
                                retry_cap=opts.reconnect_cap, attempt_timeout=opts.attempt_timeout, spacing=spacing)
    storm_cpu = (system.server.cpu_seconds() or 0.0) - cpu_before
    booted = sum(r["booted"] for r in replies)
    last = max((r["last_boot"] for r in replies if r["last_boot"] is not None), default=None)
    retries = merge_errors([r["retries"] for r in replies])
    errors = merge_errors([r["errors"] for r in replies])
    boot = merge_hists([r["boot_hist"] for r in replies])
    result = {
        "booted": booted,
        "boot_storm_s": (last - start_at) if last is not None and booted == n else None,
        "boot_p50_s": boot.percentile(50),
        "boot_storm_server_cpu_s": storm_cpu,
        "connect_retries": retries["total"],
        "retry_kinds": retries["counts"],
        "errors": errors,
    }
    say(f"boot storm: {booted}/{n} booted in {result['boot_storm_s'] or float('nan'):.2f} s "
        f"(median charge point {boot.percentile(50) or 0:.2f} s; server CPU {storm_cpu:.1f} s), "
        f"{retries['total']} retried attempts "
        f"{retries['counts'] or ''}, {errors['total']} failures")
    return result


async def health_or_empty(api: Api) -> dict[str, Any]:
    try:
        return await api.get("/health")
    except Exception:
        return {}


def commit_figures(start: dict[str, Any], end: dict[str, Any], calls: int, seconds: float) -> dict[str, Any]:
    """Events committed and group-commit batches over the window, from GET /health."""
    try:
        events = end["committedEvents"] - start["committedEvents"]
        batches = end["commitBatches"] - start["commitBatches"]
    except (KeyError, TypeError):
        return {}
    return {"events_per_call": events / calls if calls else None,
            "events_per_batch": events / batches if batches else None,
            "commit_batches_per_s": batches / seconds if seconds > 0 else None}


def errors_storm_and_memory(errors: dict[str, Any], storm: dict[str, Any], rss_before: Any,
                            rss_connected: Any, n: int) -> dict[str, Any]:
    """The result fields every scenario reports the same way."""
    return {
        "errors": errors["total"],
        "error_kinds": errors["counts"],
        "error_samples": errors["samples"],
        "boot_storm_s": storm["boot_storm_s"],
        "boot_storm_server_cpu_s": storm["boot_storm_server_cpu_s"],
        "boot_p50_s": storm["boot_p50_s"],
        "connect_retries": storm["connect_retries"],
        "rss_before_kib": rss_before,
        "rss_connected_kib": rss_connected,
        "rss_per_conn_kib": rss_delta_per_conn(rss_before, rss_connected, n),
    }


def rss_delta_per_conn(before: int | None, after: int | None, n: int) -> float | None:
    if before is None or after is None or n <= 0:
        return None
    return (after - before) / n


async def teardown(workers: Workers | None, system: System) -> None:
    began = now()
    if workers is not None:
        await workers.close()
    closed = now()
    await system.down()
    say(f"teardown: load generators closed in {closed - began:.1f} s, server stopped and store dropped in "
        f"{now() - closed:.1f} s")


# ---- scenario (1)+(4): throughput, closed loop, and CPU per call ---------------------------------


async def run_load_scenario(opts: argparse.Namespace, kind: str, log_dir: Path, name: str, n: int, mode: str,
                            rate: float, probe: bool, profile: str | None, server_workers: int = 1) -> dict[str, Any]:
    system = System(opts, kind, log_dir, server_workers=server_workers)
    workers: Workers | None = None
    result: dict[str, Any] = {"scenario": name, "store": kind, "cps": n, "mode": mode,
                              "offered_rate": rate if mode == "open" else None, "server_workers": server_workers}
    try:
        await system.up(n, probe=probe)
        assert system.server is not None and system.store is not None
        result["store_url"] = system.store.url  # dropped or removed at the end
        result["server_processes"] = 1 + len(child_pids(system.server.pid))  # with --workers N: the parent and N
        await asyncio.sleep(0.5)
        rss_before = system.server.rss_kib()
        workers = await Workers.start(system.server.ws, n, auto_workers(opts, n), opts)
        storm = await connect_storm(system, workers, n)
        await asyncio.sleep(0.5)
        rss_connected = system.server.rss_kib()
        prepared = await workers.all("prepare", timeout=opts.connect_deadline)
        prepare_errors = merge_errors([p["errors"] for p in prepared])
        started = sum(p["started"] for p in prepared)
        say(f"transactions started on {started}/{n} charge points ({prepare_errors['total']} errors)")

        start_at = now() + 0.5
        measure_from = start_at + opts.warmup
        measure_to = measure_from + opts.duration
        say(f"{mode} loop{f' at {rate:g} calls/s' if mode == 'open' else ''}: {opts.warmup:g} s warm-up, "
            f"{opts.duration:g} s measured, mix {opts.mix}")
        load = asyncio.ensure_future(workers.all(
            "load", mode=mode, mix=opts.mix, rate_per_cp=rate / n if mode == "open" else 0.0,
            start_at=start_at, measure_from=measure_from, measure_to=measure_to, grace=opts.grace))
        window = CpuWindow(system.server, system.store, workers)
        async with Api(system.server.http, system.token) as api:
            await sleep_until(measure_from)
            window.start()
            rss_window_start = system.server.rss_kib()
            spy = start_py_spy(profile, system.server.pid, opts.duration, opts.py_spy_args) if profile else None
            result["profiled"] = bool(profile)
            health_start = await health_or_empty(api)
            await sleep_until(measure_to)
            cpu = window.stop()
            health_end = await health_or_empty(api)
            rss_window_end = system.server.rss_kib()
        replies = await load
        if spy is not None:
            finish_py_spy(spy, profile)
        hist = merge_hists([r["hist"] for r in replies])
        lag = merge_hists([r["lag_hist"] for r in replies])
        errors = merge_errors([storm["errors"], prepare_errors] + [r["errors"] for r in replies])
        calls = sum(r["counters"]["completed_in_window"] for r in replies)
        per_action = {}
        for action, _ in parse_mix(opts.mix):
            h = merge_hists([r["per_action"][action] for r in replies])
            per_action[action] = {"n": h.count, "p50_ms": ms(h.percentile(50)), "p99_ms": ms(h.percentile(99))}
        window_s = cpu["t"]
        result.update({
            "calls_per_s": calls / window_s if window_s > 0 else None,
            "calls": calls,
            "p50_ms": ms(hist.percentile(50)),
            "p99_ms": ms(hist.percentile(99)),
            "p999_ms": ms(hist.percentile(99.9)),
            "max_ms": ms(hist.max),
            **errors_storm_and_memory(errors, storm, rss_before, rss_connected, n),
            "rss_growth_in_window_kib": (rss_window_end - rss_window_start)
            if rss_window_end is not None and rss_window_start is not None else None,
            "server_cpu_ms_per_call": cpu["server"] * 1000 / calls if calls else None,
            "server_cpu_pct": 100 * cpu["server"] / window_s,
            "db_cpu_ms_per_call": (cpu["db"] * 1000 / calls if calls else None) if kind == "postgresql" else None,
            "client_cpu_pct": 100 * cpu["client"] / window_s,
            "generator_lag_p99_ms": ms(lag.percentile(99)) if mode == "open" else None,
            "unfinished": sum(r["unfinished"] for r in replies),
            # With several workers each GET /health reaches one of them: its commit counters are not the server's.
            **(commit_figures(health_start, health_end, calls, window_s) if server_workers == 1 else {}),
            "per_action": per_action,
        })
        say(f"{name}/{kind}: {result['calls_per_s']:.0f} calls/s, p50 {fmt(result['p50_ms'])} ms, "
            f"p99 {fmt(result['p99_ms'])} ms, p99.9 {fmt(result['p999_ms'])} ms, {errors['total']} errors, "
            f"server CPU {fmt(result['server_cpu_ms_per_call'], 3)} ms/call ({result['server_cpu_pct']:.0f}%), "
            f"client CPU {result['client_cpu_pct']:.0f}%")
        if errors["total"]:
            say(f"errors: {errors['counts']} e.g. {errors['samples'][:2]}")
        if probe:
            result.update(await idle_probe(system, opts))
    finally:
        await teardown(workers, system)
    return result


async def idle_probe(system: System, opts: argparse.Namespace) -> dict[str, Any]:
    """One extra charge point on the otherwise idle server: Authorize, one at a time."""
    import aiohttp

    assert system.server is not None
    hist = Histogram()
    errors = 0
    async with aiohttp.ClientSession() as session:
        cp = ChargePoint(system.server.ws, PROBE_ID, opts.id_tag)
        await cp.connect(session)
        await cp.boot()
        await asyncio.sleep(1.0)
        for _ in range(opts.probe_calls):
            began = now()
            try:
                await cp.call("Authorize", {"idTag": opts.id_tag})
            except Exception:
                errors += 1
                continue
            hist.add(now() - began)
            await asyncio.sleep(opts.probe_pause)
        await cp.close()
    say(f"idle Authorize: p50 {fmt(ms(hist.percentile(50)), 2)} ms, p99 {fmt(ms(hist.percentile(99)), 2)} ms "
        f"over {hist.count} calls, {errors} errors")
    return {"idle_authorize_p50_ms": ms(hist.percentile(50)), "idle_authorize_p99_ms": ms(hist.percentile(99)),
            "idle_authorize_errors": errors}


# ---- scenario (3): scale ------------------------------------------------------------------------


async def run_scale(opts: argparse.Namespace, kind: str, log_dir: Path) -> dict[str, Any]:
    n = opts.cps or 10_000
    system = System(opts, kind, log_dir, heartbeat_interval=opts.heartbeat_interval, server_workers=opts.workers)
    workers: Workers | None = None
    result: dict[str, Any] = {"scenario": "scale", "store": kind, "cps": n, "mode": "hold", "offered_rate": None,
                              "server_workers": opts.workers}
    try:
        await system.up(n)
        assert system.server is not None and system.store is not None
        result["store_url"] = system.store.url
        server = system.server
        await asyncio.sleep(0.5)
        rss_before = server.rss_kib()
        workers = await Workers.start(server.ws, n, auto_workers(opts, n), opts)
        storm = await connect_storm(system, workers, n)
        await asyncio.sleep(1.0)
        rss_connected = server.rss_kib()
        await workers.all("hold_start", retry_cap=opts.reconnect_cap, attempt_timeout=opts.attempt_timeout)
        say(f"holding {n} connections for {opts.hold:g} s (heartbeat every {opts.heartbeat_interval} s)")
        window = CpuWindow(server, system.store, workers)
        window.start()
        hold_end = now() + opts.hold
        health: dict[str, Any] = {}
        async with Api(server.http, system.token) as api:
            while now() < hold_end:
                await asyncio.sleep(min(15.0, max(0.0, hold_end - now())))
                health = await api.get("/health")
                statuses = await workers.all("status")
                say(f"  {hold_end - now():.0f} s left: server sees {health.get('connectedChargePoints')} connected, "
                    f"clients {sum(s['connected'] for s in statuses)}, heartbeats "
                    f"{sum(s['heartbeats'] for s in statuses)}, drops {sum(s['drops'] for s in statuses)}, "
                    f"RSS {server.rss_kib()} KiB")
        cpu = window.stop()
        rss_held = server.rss_kib()
        held = await workers.all("status")
        beats = sum(s["heartbeats"] for s in held)
        hb_hist = merge_hists([s["hist"] for s in held])
        drops = sum(s["drops"] for s in held)
        server_connected = health.get("connectedChargePoints")

        # Restart: stop the server, start it again on the same store and port; everyone reconnects.
        await workers.all("arm_restart")
        stop_begun = now()
        if opts.restart_signal == "kill":
            await server.kill()
            shutdown_s, killed = now() - stop_begun, True
        else:
            shutdown_s, killed = await server.stop(opts.shutdown_timeout)
        say(f"server stopped in {shutdown_s:.1f} s{' (SIGKILL)' if killed else ''}; starting it again")
        ready = await server.start()
        say(f"server ready {ready - stop_begun:.1f} s after the stop began; waiting for {n} to reconnect and boot")
        deadline = ready + opts.reconnect_timeout
        statuses = await workers.all("status")
        while sum(s["rebooted"] for s in statuses) < n and now() < deadline:
            await asyncio.sleep(0.5)
            statuses = await workers.all("status")
        rebooted = sum(s["rebooted"] for s in statuses)
        last = max((s["last_reboot"] for s in statuses if s["last_reboot"] is not None), default=None)
        reconnect_failures = merge_errors([s["reconnect_failures"] for s in statuses])
        await asyncio.sleep(1.0)
        rss_reconnected = server.rss_kib()
        final = await workers.all("hold_stop")
        errors = merge_errors([storm["errors"]] + [s["errors"] for s in final])
        result.update({
            "calls_per_s": beats / cpu["t"] if cpu["t"] > 0 else None,
            "calls": beats,
            "p50_ms": ms(hb_hist.percentile(50)),
            "p99_ms": ms(hb_hist.percentile(99)),
            "p999_ms": ms(hb_hist.percentile(99.9)),
            **errors_storm_and_memory(errors, storm, rss_before, rss_connected, n),
            "rss_held_kib": rss_held,
            "rss_growth_per_conn_during_hold_kib": rss_delta_per_conn(rss_connected, rss_held, n),
            "server_cpu_ms_per_call": cpu["server"] * 1000 / beats if beats else None,
            "server_cpu_pct": 100 * cpu["server"] / cpu["t"] if cpu["t"] > 0 else None,
            "client_cpu_pct": 100 * cpu["client"] / cpu["t"] if cpu["t"] > 0 else None,
            "hold_s": cpu["t"],
            "drops_during_hold": drops,
            "server_connected_at_end_of_hold": server_connected,
            "shutdown_s": shutdown_s,
            "shutdown_killed": killed,
            "restart_signal": opts.restart_signal,
            "rebooted": rebooted,
            "reconnect_s": (last - ready) if last is not None and rebooted == n else None,
            "reconnect_from_stop_s": (last - stop_begun) if last is not None and rebooted == n else None,
            "reconnect_failed_attempts": reconnect_failures["total"],
            "reconnect_failure_kinds": reconnect_failures["counts"],
            "rss_after_reconnect_kib": rss_reconnected,
        })
        if rebooted < n:
            result["errors"] += n - rebooted
            result["error_kinds"]["not reconnected after restart"] = n - rebooted
        say(f"scale/{kind}: boot storm {fmt(storm['boot_storm_s'], 2)} s, RSS/conn "
            f"{fmt(result['rss_per_conn_kib'], 1)} KiB, drops {drops}, server saw {server_connected}, "
            f"reconnect {fmt(result['reconnect_s'], 2)} s after ready ({rebooted}/{n}), errors {result['errors']}")
    finally:
        await teardown(workers, system)
    return result


# ---- py-spy --------------------------------------------------------------------------------------


def start_py_spy(path: str, pid: int, duration: float, extra: str = "") -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    suffix = Path(path).suffix
    fmt_name = {".svg": "flamegraph", ".json": "speedscope"}.get(suffix, "raw")
    say(f"py-spy recording pid {pid} for {duration:g} s into {path} ({fmt_name})")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(duration)),
                             "--rate", "200", "--format", fmt_name, "--output", path, "--nonblocking", "--threads",
                             *extra.split()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_py_spy(process: subprocess.Popen[bytes], path: str | None) -> None:
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    if process.returncode != 0:
        say(f"py-spy failed ({process.returncode}): {err.decode(errors='replace')[-500:]}")
    elif path and Path(path).suffix not in (".svg", ".json"):
        from bench.profile_summary import summarize

        print(summarize(Path(path), top=25), file=sys.stderr)


# ---- the report --------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


NUMERIC_SKIP = {"cps", "offered_rate", "server_workers", "server_processes"}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the numeric figures; errors add up over the runs."""
    if len(runs) == 1:
        return dict(runs[0], runs=1)
    merged: dict[str, Any] = dict(runs[0])
    for key, value in runs[0].items():
        if key in NUMERIC_SKIP or isinstance(value, bool):
            continue
        values = [run.get(key) for run in runs]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if key in ("errors", "drops_during_hold", "unfinished", "idle_authorize_errors", "connect_retries"):
            merged[key] = sum(numbers)
        elif numbers and len(numbers) == len(values):
            merged[key] = statistics.median(numbers)
        elif numbers:
            merged[key] = statistics.median(numbers)  # some runs had no value (e.g. not all booted)
    kinds: dict[str, int] = {}
    for run in runs:
        for kind, count in run.get("error_kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + count
    merged["error_kinds"] = kinds
    if all(run.get("per_action") for run in runs):
        merged["per_action"] = {
            action: {
                key: statistics.median([run["per_action"][action][key] or 0.0 for run in runs])
                for key in ("n", "p50_ms", "p99_ms")
            }
            for action in runs[0]["per_action"]
        }
    merged["runs"] = len(runs)
    merged["all_runs"] = [{k: v for k, v in run.items() if k != "per_action"} for run in runs]
    return merged


def markdown(results: list[dict[str, Any]], opts: argparse.Namespace) -> str:
    lines = [
        "| scenario | store | CPs | load | calls/s | p50 ms | p99 ms | p99.9 ms | errors | boot storm s "
        "| RSS/conn KiB | server CPU ms/call | server CPU % | client CPU % | runs |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        if r["scenario"] == "scale":
            load = f"hold {fmt(r.get('hold_s'), 0)} s, heartbeats"
        elif r["mode"] == "open":
            load = f"open {fmt(r.get('offered_rate'), 0)}/s"
        else:
            load = "closed"
        if r.get("server_workers", 1) != 1 or r["scenario"] == "scale-out":
            load += f", {r.get('server_workers', 1)} worker{'s' if r.get('server_workers', 1) != 1 else ''}"
        lines.append(
            f"| {r['scenario']} | {r['store']} | {fmt(r['cps'])} | {load} | {fmt(r.get('calls_per_s'), 0)} "
            f"| {fmt(r.get('p50_ms'), 2)} | {fmt(r.get('p99_ms'), 2)} | {fmt(r.get('p999_ms'), 2)} "
            f"| {fmt(r.get('errors'))} | {fmt(r.get('boot_storm_s'), 2)} | {fmt(r.get('rss_per_conn_kib'), 1)} "
            f"| {fmt(r.get('server_cpu_ms_per_call'), 3)} | {fmt(r.get('server_cpu_pct'), 0)} "
            f"| {fmt(r.get('client_cpu_pct'), 0)} | {r.get('runs', 1)} |"
        )
    notes = []
    for r in results:
        tag = f"{r['scenario']}/{r['store']}" + (f"/{r['server_workers']}w" if r.get("server_workers", 1) != 1 else "")
        if r["scenario"] in ("throughput", "latency") and r.get("per_action"):
            parts = ", ".join(f"{a} p50 {fmt(v['p50_ms'], 2)} / p99 {fmt(v['p99_ms'], 2)} ms"
                              for a, v in r["per_action"].items() if v["n"])
            notes.append(f"- {tag}: per action: {parts}")
        if r.get("events_per_batch") is not None:
            notes.append(f"- {tag}: {fmt(r.get('events_per_call'), 2)} events committed per call, "
                         f"{fmt(r.get('events_per_batch'), 1)} events per group-commit batch, "
                         f"{fmt(r.get('commit_batches_per_s'), 0)} batches/s")
        if r.get("db_cpu_ms_per_call") is not None:
            notes.append(f"- {tag}: PostgreSQL backends' CPU {fmt(r['db_cpu_ms_per_call'], 3)} ms/call "
                         "(on top of the server's)")
        if r["scenario"] == "latency":
            notes.append(f"- {tag}: idle charge point Authorize p50 {fmt(r.get('idle_authorize_p50_ms'), 2)} ms, "
                         f"p99 {fmt(r.get('idle_authorize_p99_ms'), 2)} ms; load generator lateness p99 "
                         f"{fmt(r.get('generator_lag_p99_ms'), 2)} ms")
        if r["scenario"] == "scale":
            if r.get("restart_signal") == "kill":
                stopped = "server crashed with SIGKILL"
            else:
                stopped = f"graceful shutdown (SIGTERM) took {fmt(r.get('shutdown_s'), 1)} s" + (
                    f", SIGKILLed after {fmt(opts.shutdown_timeout, 0)} s" if r.get("shutdown_killed") else "")
            notes.append(
                f"- {tag}: drops during hold {fmt(r.get('drops_during_hold'))}, server saw "
                f"{fmt(r.get('server_connected_at_end_of_hold'))} connected at the end of the hold; RSS growth "
                f"during hold {fmt(r.get('rss_growth_per_conn_during_hold_kib'), 2)} KiB/conn; {stopped}; "
                f"all {fmt(r.get('rebooted'))} reconnected and booted {fmt(r.get('reconnect_s'), 2)} s after the "
                f"new server listened ({fmt(r.get('reconnect_from_stop_s'), 2)} s after the stop began); "
                f"RSS after reconnect {fmt(r.get('rss_after_reconnect_kib'))} KiB")
        if r.get("boot_storm_s") is not None:
            notes.append(f"- {tag}: boot storm: median charge point booted after {fmt(r.get('boot_p50_s'), 2)} s, "
                         f"server CPU {fmt(r.get('boot_storm_server_cpu_s'), 1)} s, "
                         f"{fmt(r.get('connect_retries') or 0)} connection attempts retried")
        if r.get("error_kinds"):
            notes.append(f"- {tag}: errors {r['error_kinds']}")
    notes.extend(scale_out_notes(results))
    header = (f"AmpLedger benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
              f"window {opts.duration:g} s after {opts.warmup:g} s warm-up; medians of {opts.repeat} run(s)")
    return "\n".join([header, "", *lines, "", *notes])


def scale_out_notes(results: list[dict[str, Any]]) -> list[str]:
    """scale-out: what the second worker bought, side by side in the same run."""
    by_workers = {r["server_workers"]: r for r in results if r["scenario"] == "scale-out"}
    one, two = by_workers.get(1), by_workers.get(2)
    if one is None or two is None or not one.get("calls_per_s") or two.get("calls_per_s") is None:
        return []
    ratio = two["calls_per_s"] / one["calls_per_s"]
    return [f"- scale-out/{one['store']}: 2 workers {fmt(two['calls_per_s'], 0)} calls/s = {ratio:.2f}x one worker's "
            f"{fmt(one['calls_per_s'], 0)} (server CPU {fmt(two.get('server_cpu_pct'), 0)} % against "
            f"{fmt(one.get('server_cpu_pct'), 0)} %)"]


# ---- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--standard", action="store_true",
                   help="run the standard set: throughput on sqlite and postgresql, latency and scale on sqlite")
    p.add_argument("--scenario", action="append", choices=[*SCENARIOS, "cpu"],
                   help="run this scenario (repeatable); cpu is reported by throughput; scale-out is throughput "
                        "with 1 and then 2 server workers on postgresql, side by side")
    p.add_argument("--store", choices=["sqlite", "postgresql", "both"],
                   help="store for every chosen scenario (default: throughput on both, the others on sqlite)")
    p.add_argument("--duration", type=float, default=20.0, help="measured window, seconds")
    p.add_argument("--warmup", type=float, default=5.0, help="load before the window, seconds")
    p.add_argument("--grace", type=float, default=15.0, help="how long calls may still finish after the window")
    p.add_argument("--repeat", type=int, default=1, help="runs per scenario; the table shows medians")
    p.add_argument("--cps", type=int, help="charge points (default 100 throughput, 1000 latency, 10000 scale)")
    p.add_argument("--mode", choices=["closed", "open"], help="override the scenario's loop mode")
    p.add_argument("--rate", type=float, default=1000.0, help="open loop: total calls/s")
    p.add_argument("--mix", default=DEFAULT_MIX, help="weighted actions, e.g. MeterValues=60,Heartbeat=30,...")
    p.add_argument("--meter-samples", type=int, default=10, help="sampled values per MeterValues")
    p.add_argument("--workers", type=int, default=1,
                   help="the server's processes (csms serve --workers N; above 1 needs --store postgresql); "
                        "scale-out runs 1 and 2 whatever this says")
    p.add_argument("--load-workers", default="auto",
                   help="load-generator processes (auto: one per 5000 CPs, at most 4)")
    p.add_argument("--hold", type=float, default=300.0, help="scale: seconds to hold every connection")
    p.add_argument("--heartbeat-interval", type=int, default=60,
                   help="scale: the server's --heartbeat-interval, which the charge points follow")
    p.add_argument("--connect-deadline", type=float, default=300.0, help="give up connecting after this long")
    p.add_argument("--attempt-timeout", type=float, default=30.0,
                   help="a connection attempt (handshake + BootNotification) is abandoned and retried after this")
    p.add_argument("--connect-rate", type=float, default=0.0,
                   help="first connection attempts per second in total (0: all at once, a true boot storm)")
    p.add_argument("--reconnect-cap", type=float, default=4.0,
                   help="charge points retry a connection after uniform(0, min(cap, 0.5*2^attempt)) s")
    p.add_argument("--reconnect-timeout", type=float, default=300.0, help="scale: how long to wait for reconnects")
    p.add_argument("--restart-signal", choices=["term", "kill"], default="term",
                   help="scale: stop the server gracefully (SIGTERM) or crash it (SIGKILL)")
    p.add_argument("--shutdown-timeout", type=float, default=120.0, help="scale: SIGKILL after this long")
    p.add_argument("--probe-calls", type=int, default=200, help="latency: Authorize calls of the idle probe")
    p.add_argument("--probe-pause", type=float, default=0.01, help="latency: pause between probe calls, seconds")
    p.add_argument("--id-tag", default=DEFAULT_ID_TAG)
    p.add_argument("--postgres-admin", default=DEFAULT_POSTGRES_ADMIN,
                   help="a PostgreSQL URL allowed to CREATE and DROP DATABASE")
    p.add_argument("--server-root", type=Path, default=ROOT,
                   help="the checkout whose `python -m app serve` runs (e.g. an exported commit)")
    p.add_argument("--tmpdir", default=None, help="where the SQLite store's temporary directory and the server logs go")
    p.add_argument("--py-spy", metavar="PATH",
                   help="profile the server with py-spy in the first throughput or latency window (.svg, .json, raw)")
    p.add_argument("--py-spy-args", default="", help="extra py-spy record options, e.g. '--gil' or '--idle'")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    p.add_argument("--quick", action="store_true", help="short smoke settings: 10 s window, 2 s warm-up, 30 s hold")
    opts = p.parse_args(argv)
    if opts.quick:
        defaults = {"duration": 20.0, "warmup": 5.0, "hold": 300.0}
        quick = {"duration": 10.0, "warmup": 2.0, "hold": 30.0}
        for key, value in quick.items():
            if getattr(opts, key) == defaults[key]:
                setattr(opts, key, value)
    if not opts.standard and not opts.scenario:
        p.error("choose --standard or one or more --scenario")
    parse_mix(opts.mix)
    return opts


def plan(opts: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(scenario, store, server workers) in the order they run."""
    chosen = [name for name in SCENARIOS if name != "scale-out"] if opts.standard else []
    for name in opts.scenario or []:
        name = "throughput" if name == "cpu" else name
        if name not in chosen:
            chosen.append(name)
    runs: list[tuple[str, str, int]] = []
    for name in chosen:
        if name == "scale-out":  # several workers are one central system on PostgreSQL only
            runs.extend((name, "postgresql", workers) for workers in (1, 2))
            continue
        if opts.store == "both":
            kinds = ["sqlite", "postgresql"]
        elif opts.store:
            kinds = [opts.store]
        else:
            kinds = ["sqlite", "postgresql"] if name == "throughput" else ["sqlite"]
        runs.extend((name, kind, opts.workers) for kind in kinds)
    return runs


async def run_one(opts: argparse.Namespace, name: str, kind: str, server_workers: int, log_dir: Path,
                  profile: str | None) -> dict[str, Any]:
    if name in ("throughput", "scale-out"):
        return await run_load_scenario(opts, kind, log_dir, name, opts.cps or 100, opts.mode or "closed",
                                       opts.rate, probe=False, profile=profile, server_workers=server_workers)
    if name == "latency":
        return await run_load_scenario(opts, kind, log_dir, "latency", opts.cps or 1000, opts.mode or "open",
                                       opts.rate, probe=True, profile=profile, server_workers=server_workers)
    return await run_scale(opts, kind, log_dir)


async def amain(opts: argparse.Namespace) -> int:
    soft, hard = raise_nofile_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="csms_bench_logs_", dir=opts.tmpdir))
    say(f"open files limit {soft}/{hard}; server logs in {log_dir}")
    results = []
    profile = opts.py_spy
    for name, kind, server_workers in plan(opts):
        runs = []
        for attempt in range(opts.repeat):
            say(f"=== {name} on {kind}{f' with {server_workers} workers' if server_workers != 1 else ''}, "
                f"run {attempt + 1}/{opts.repeat}")
            profiled = profile if name in ("throughput", "latency") else None
            runs.append(await run_one(opts, name, kind, server_workers, log_dir, profiled))
            if profiled:
                profile = None  # profile once
        results.append(median_of(runs))
    print(markdown(results, opts), flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2, default=str))
        say(f"figures written to {opts.json}")
    return 1 if any(r.get("errors") for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    install_uvloop()
    return asyncio.run(amain(opts))


if __name__ == "__main__":
    sys.exit(main())
