"""A load-generator worker process: a slice of the simulated charge points.

The orchestrator (bench.run) starts one or more of these as
``python -m bench.loadgen --url ws://... --first 0 --count 2500`` and drives
them with JSON lines on stdin; each command is answered with one JSON line on
stdout (logs go to stderr). All times exchanged are ``time.monotonic()``
values, which are system-wide on Linux, so processes share one clock.

Commands (``{"seq": n, "cmd": name, ...}``):

- ``connect``: every charge point connects and boots, starting at ``start_at``
  (the boot storm); failed attempts are retried with jittered backoff until
  ``deadline``.
- ``prepare``: every charge point reports Preparing, starts a transaction, and
  reports Charging.
- ``load``: calls from the mix, closed loop (next call when the reply arrives)
  or open loop (Poisson arrivals at ``rate_per_cp`` per charge point, latency
  from the scheduled time), over ``[start_at, measure_to)``; only calls in
  ``[measure_from, measure_to)`` are counted.
- ``hold_start`` / ``arm_restart`` / ``status`` / ``hold_stop``: keep the
  charge points connected, heartbeating at the interval their boot reply gave,
  reconnecting and rebooting when dropped.
- ``close``: closes every socket and ends the process.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import random
import resource
import sys
from typing import Any

import aiohttp
import orjson

from bench.hist import Histogram
from bench.ocpp import DEFAULT_ID_TAG, CallFailed, ChargePoint, Dropped, now, parse_mix

MAX_ERROR_SAMPLES = 5


def raise_nofile_limit() -> tuple[int, int]:
    """Raises this process's soft RLIMIT_NOFILE to its hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def describe(error: BaseException) -> str:
    if isinstance(error, CallFailed):
        return f"CALLERROR {error.action}: {error.code}"
    if isinstance(error, Dropped):
        return "connection dropped"
    if isinstance(error, aiohttp.WSServerHandshakeError):
        return f"handshake HTTP {error.status}"
    return type(error).__name__


class Errors:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.samples: list[str] = []

    def add(self, kind: str, detail: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(f"{kind}: {detail}"[:300] if detail else kind)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "samples": self.samples, "total": self.total}


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        ids = [f"{args.prefix}{i:06d}" for i in range(args.first, args.first + args.count)]
        self.cps = [ChargePoint(args.url, cp_id, args.id_tag, args.meter_samples) for cp_id in ids]
        self.session: aiohttp.ClientSession | None = None
        self._hold_tasks: list[asyncio.Task[None]] = []
        self._hold: dict[str, Any] = {}
        self._stopping = asyncio.Event()

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False, enable_cleanup_closed=False)
        timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=self.args.connect_timeout,
                                        sock_read=None)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    # ---- connect + boot (the boot storm) -----------------------------------------

    async def _connect_and_boot(self, cp: ChargePoint, timeout: float) -> None:
        """One attempt: the handshake and the BootNotification, within ``timeout`` seconds.

        A handshake can hang for good when the server's listen queue overflowed
        (the client thinks it is connected, the server never saw it), so every
        attempt has a deadline, as a real charge point's would.
        """
        assert self.session is not None
        session = self.session

        async def attempt() -> None:
            await cp.connect(session)
            await cp.boot()

        await asyncio.wait_for(attempt(), timeout)

    async def cmd_connect(self, msg: dict[str, Any]) -> dict[str, Any]:
        start_at = float(msg["start_at"])
        deadline = float(msg["deadline"])
        base, cap = float(msg.get("retry_base", 0.5)), float(msg.get("retry_cap", 4.0))
        attempt_timeout = float(msg.get("attempt_timeout", 30.0))
        spacing = float(msg.get("spacing", 0.0))  # seconds between this worker's first attempts
        errors, retries = Errors(), Errors()
        boot_hist = Histogram()
        boot_times: list[float] = []

        async def one(index: int, cp: ChargePoint) -> None:
            delay = start_at + index * spacing - now()
            if delay > 0:
                await asyncio.sleep(delay)
            attempt = 0
            while True:
                try:
                    await self._connect_and_boot(cp, attempt_timeout)
                except Exception as error:
                    await cp.close()
                    if now() >= deadline:
                        errors.add(describe(error), repr(error))
                        return
                    retries.add(describe(error), repr(error))
                    attempt += 1
                    await asyncio.sleep(min(random.uniform(0, min(cap, base * 2**attempt)),
                                            max(0.0, deadline - now())))
                    continue
                done = now()
                boot_times.append(done)
                boot_hist.add(done - start_at)
                return

        await asyncio.gather(*(one(index, cp) for index, cp in enumerate(self.cps)))
        return {
            "booted": len(boot_times),
            "first_boot": min(boot_times) if boot_times else None,
            "last_boot": max(boot_times) if boot_times else None,
            "boot_hist": boot_hist.to_json(),
            "errors": errors.to_json(),
            "retries": retries.to_json(),
        }

    async def cmd_prepare(self, msg: dict[str, Any]) -> dict[str, Any]:
        errors = Errors()

        async def one(cp: ChargePoint) -> None:
            try:
                await cp.start_transaction()
            except Exception as error:
                errors.add(describe(error), repr(error))

        await asyncio.gather(*(one(cp) for cp in self.cps if cp.connected))
        return {"started": sum(1 for cp in self.cps if cp.transaction_id is not None), "errors": errors.to_json()}

    # ---- the measured load ------------------------------------------------------------

    async def cmd_load(self, msg: dict[str, Any]) -> dict[str, Any]:
        mode = msg["mode"]
        mix = parse_mix(msg["mix"])
        actions = [action for action, _ in mix]
        cum_weights = list(itertools.accumulate(weight for _, weight in mix))
        total_weight = cum_weights[-1]
        start_at = float(msg["start_at"])
        measure_from, measure_to = float(msg["measure_from"]), float(msg["measure_to"])
        grace = float(msg.get("grace", 10.0))
        rate_per_cp = float(msg.get("rate_per_cp", 0.0))
        hist, lag_hist = Histogram(), Histogram()
        per_action = {action: Histogram() for action in actions}
        errors = Errors()
        counters = {"scheduled": 0, "sent": 0, "completed": 0, "failed": 0, "completed_in_window": 0}

        def pick() -> str:
            return actions[bisect.bisect_right(cum_weights, random.random() * total_weight)]

        def finished(action: str, sched: float, sent: float, done: float, ok: bool) -> None:
            if ok:
                counters["completed"] += 1
            else:
                counters["failed"] += 1
            if measure_from <= done < measure_to:
                counters["completed_in_window"] += 1 if ok else 0
            # closed loop: counted by completion time; open loop: by scheduled time
            counted = (measure_from <= done < measure_to) if mode == "closed" else (measure_from <= sched < measure_to)
            if counted and ok:
                latency = done - sched
                hist.add(latency)
                per_action[action].add(latency)

        async def send_one(cp: ChargePoint, sched: float | None) -> bool:
            """One CALL of the mix, timed from ``sched`` (None: from sending); False once dropped."""
            action = pick()
            payload = cp.payload_for(action)
            start = now() if sched is None else sched
            counters["sent"] += 1
            try:
                await cp.call(action, payload)
            except CallFailed as error:
                finished(action, start, start, now(), False)
                errors.add(describe(error), str(error))
            except Dropped as error:
                errors.add("connection dropped", f"{cp.id}: {error}")
                counters["failed"] += 1
                return False
            else:
                finished(action, start, start, now(), True)
            return True

        async def closed(cp: ChargePoint) -> None:
            delay = start_at - now()
            if delay > 0:
                await cp.idle(delay)
            while now() < measure_to:
                counters["scheduled"] += 1
                if not await send_one(cp, None):
                    return

        async def open_(cp: ChargePoint) -> None:
            sched = start_at + random.expovariate(rate_per_cp)
            while sched < measure_to:
                counters["scheduled"] += 1
                delay = sched - now()
                if delay > 0:
                    await cp.idle(delay)
                    lag_hist.add(max(0.0, now() - sched))  # the generator's own lateness
                if not await send_one(cp, sched):
                    return
                sched += random.expovariate(rate_per_cp)

        run = closed if mode == "closed" else open_
        if mode != "closed" and rate_per_cp <= 0:
            raise ValueError("open loop needs rate_per_cp > 0")
        tasks = [asyncio.ensure_future(run(cp)) for cp in self.cps if cp.connected]
        timeout = max(0.0, measure_to + grace - now())
        done, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                errors.add("client bug", repr(task.exception()))
        unfinished = counters["scheduled"] - counters["completed"] - counters["failed"]
        if unfinished > 0:
            errors.add("unanswered or unsent at the end", f"{unfinished} calls, {len(pending)} charge points")
        return {
            "hist": hist.to_json(),
            "lag_hist": lag_hist.to_json(),
            "per_action": {action: h.to_json() for action, h in per_action.items()},
            "counters": counters,
            "unfinished": max(0, unfinished),
            "errors": errors.to_json(),
        }

    # ---- hold: stay connected, heartbeat, reconnect when dropped -------------------------

    async def cmd_hold_start(self, msg: dict[str, Any]) -> dict[str, Any]:
        base, cap = float(msg.get("retry_base", 0.5)), float(msg.get("retry_cap", 4.0))
        attempt_timeout = float(msg.get("attempt_timeout", 30.0))
        state: dict[str, Any] = {
            "heartbeats": 0, "hist": Histogram(), "drops": 0, "armed": False, "armed_drops": 0,
            "rebooted": set(), "last_reboot": None, "first_reboot": None, "reconnect_failures": Errors(),
            "errors": Errors(), "reboot_hist": Histogram(), "armed_at": None,
        }
        self._hold = state

        async def hold(cp: ChargePoint) -> None:
            next_beat = now() + random.uniform(0, cp.heartbeat_interval)
            while True:
                try:
                    if not cp.connected:
                        raise Dropped("not connected")
                    wait = next_beat - now()
                    if wait > 0:
                        await cp.idle(wait)
                        continue
                    sent = now()
                    try:
                        await cp.call("Heartbeat", {})
                    except CallFailed as error:
                        state["errors"].add(describe(error), str(error))
                    else:
                        state["heartbeats"] += 1
                        state["hist"].add(now() - sent)
                    next_beat += cp.heartbeat_interval
                except Dropped as error:
                    if state["armed"]:
                        state["armed_drops"] += 1
                    else:
                        state["drops"] += 1
                        state["errors"].add("connection dropped", f"{cp.id}: {error}")
                    await cp.close()
                    attempt = 0
                    while True:
                        await asyncio.sleep(random.uniform(0, min(cap, base * 2**attempt)))
                        try:
                            await self._connect_and_boot(cp, attempt_timeout)
                        except Exception as failure:
                            await cp.close()
                            state["reconnect_failures"].add(describe(failure), repr(failure))
                            attempt += 1
                            continue
                        break
                    done = now()
                    if state["armed"]:
                        state["rebooted"].add(cp.id)
                        state["reboot_hist"].add(done - state["armed_at"])
                        state["last_reboot"] = done if state["last_reboot"] is None else max(state["last_reboot"], done)
                        if state["first_reboot"] is None:
                            state["first_reboot"] = done
                    next_beat = done + cp.heartbeat_interval

        self._hold_tasks = [asyncio.ensure_future(hold(cp)) for cp in self.cps]
        return {"holding": len(self._hold_tasks)}

    async def cmd_arm_restart(self, msg: dict[str, Any]) -> dict[str, Any]:
        state = self._hold
        state.update(armed=True, armed_at=now(), rebooted=set(), last_reboot=None, first_reboot=None,
                     reboot_hist=Histogram())
        return {"armed": True}

    def _hold_status(self) -> dict[str, Any]:
        state = self._hold
        return {
            "connected": sum(1 for cp in self.cps if cp.connected),
            "heartbeats": state.get("heartbeats", 0),
            "hist": state["hist"].to_json() if state else Histogram().to_json(),
            "drops": state.get("drops", 0),
            "armed_drops": state.get("armed_drops", 0),
            "rebooted": len(state.get("rebooted", ())),
            "first_reboot": state.get("first_reboot"),
            "last_reboot": state.get("last_reboot"),
            "reboot_hist": state["reboot_hist"].to_json() if state else Histogram().to_json(),
            "reconnect_failures": state["reconnect_failures"].to_json() if state else Errors().to_json(),
            "errors": state["errors"].to_json() if state else Errors().to_json(),
        }

    async def cmd_status(self, msg: dict[str, Any]) -> dict[str, Any]:
        return self._hold_status()

    async def cmd_hold_stop(self, msg: dict[str, Any]) -> dict[str, Any]:
        for task in self._hold_tasks:
            task.cancel()
        await asyncio.gather(*self._hold_tasks, return_exceptions=True)
        self._hold_tasks = []
        return self._hold_status()

    async def cmd_close(self, msg: dict[str, Any]) -> dict[str, Any]:
        await asyncio.gather(*(cp.close() for cp in self.cps), return_exceptions=True)
        if self.session is not None:
            await self.session.close()
        self._stopping.set()
        return {"closed": True}

    async def cmd_info(self, msg: dict[str, Any]) -> dict[str, Any]:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return {"pid": os.getpid(), "loop": type(asyncio.get_running_loop()).__module__, "nofile": [soft, hard],
                "count": len(self.cps)}


async def serve_commands(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def reply(seq: Any, body: dict[str, Any]) -> None:
        out.write(orjson.dumps({"seq": seq, **body}) + b"\n")
        out.flush()

    async def run(msg: dict[str, Any]) -> None:
        handler = getattr(worker, "cmd_" + msg["cmd"], None)
        try:
            if handler is None:
                raise ValueError(f"unknown command {msg['cmd']!r}")
            body = await handler(msg)
        except Exception as error:  # report, do not die: the orchestrator decides
            body = {"error": repr(error)}
        reply(msg.get("seq"), body)

    running: set[asyncio.Task[None]] = set()
    while not worker._stopping.is_set():
        line = await reader.readline()
        if not line:
            break
        msg = orjson.loads(line)
        task = asyncio.ensure_future(run(msg))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running, return_exceptions=True)


async def amain(args: argparse.Namespace) -> None:
    worker = Worker(args)
    await worker.open()
    try:
        await serve_commands(worker)
    finally:
        if worker.session is not None and not worker.session.closed:
            await worker.session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://HOST:PORT (the /ocpp/{id} path is added)")
    parser.add_argument("--prefix", default="BENCH-")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--id-tag", default=DEFAULT_ID_TAG)
    parser.add_argument("--meter-samples", type=int, default=10)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.seed is not None:
        random.seed(args.seed)
    raise_nofile_limit()
    install_uvloop()
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
