"""``csms serve --workers N``: N worker processes sharing one port, and the parent that supervises them.

Each worker is forked from the parent once its options are checked, before any
event loop, thread or database connection exists, and runs a whole node of its
own (event loop, group commit, node name) on a socket bound with SO_REUSEPORT,
so the kernel spreads incoming connections over the workers. The workers are
one central system through the PostgreSQL store they share (the connection
registry, forwarded commands), exactly as nodes on several machines are.

The parent serves nothing. It waits until every worker listens before it
announces the server ("Running on ..."), forwards SIGTERM and SIGINT (and
SIGHUP, when the workers reload certificates on it; else SIGHUP stops them as
SIGTERM does), and when one worker dies it stops the others and exits non-zero:
a supervisor above (systemd's Restart=, a container's restart policy) starts
the whole server again, rather than this one restarting a worker that may die
the same way again and again. Workers run in their own process group, so a
terminal's Ctrl+C reaches them once, through the parent; and each watches a
pipe from the parent, so a parent killed outright (SIGKILL) still has its
workers stop cleanly instead of serving on, orphaned.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Callable

log = logging.getLogger("csms.workers")

# run_worker(index, ready) serves until stopped and returns its exit code; it calls ready(text) once listening.
RunWorker = Callable[[int, Callable[[str], None]], int]


def supervise(count: int, run_worker: RunWorker, print_line: Callable[[str], object], reload_on_hangup: bool) -> int:
    """Forks ``count`` workers and supervises them until they stop; returns the server's exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    ready_read, ready_write = os.pipe()
    parent_alive_read, parent_alive_write = os.pipe()
    workers: dict[int, int] = {}  # pid -> index
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker, which never returns here
            os.close(ready_read)
            os.close(parent_alive_write)
            _run_in_worker(index, run_worker, ready_write, parent_alive_read)
        workers[pid] = index
    os.close(ready_write)
    os.close(parent_alive_read)
    return _Supervisor(workers, ready_read, print_line, reload_on_hangup).run()


def _run_in_worker(index: int, run_worker: RunWorker, ready_write: int, parent_alive_read: int) -> None:
    """The worker's whole life: serve, then leave the process without returning into the parent's code."""
    code = 1
    try:
        os.setpgid(0, 0)
        threading.Thread(target=_stop_when_parent_is_gone, args=(parent_alive_read,), daemon=True,
                         name="parent watch").start()

        def ready(text: str) -> None:
            first_line = text.splitlines()[0] if text else ""
            os.write(ready_write, f"{index}\t{first_line}\n".encode())  # one short write: atomic on a pipe

        code = run_worker(index, ready)
    except BaseException:  # noqa: BLE001 - whatever ends a worker is reported, then the worker exits
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _stop_when_parent_is_gone(parent_alive_read: int) -> None:
    """Blocks until the parent's end of the pipe closes (it exited or was killed), then stops this worker."""
    while os.read(parent_alive_read, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor:
    def __init__(self, workers: dict[int, int], ready_read: int, print_line: Callable[[str], object],
                 reload_on_hangup: bool) -> None:
        self.workers = workers
        self.count = len(workers)
        self.ready_read = ready_read
        self.ready_buffer = b""
        self.announcements: dict[int, str] = {}
        self.announced = False
        self.print_line = print_line
        self.reload_on_hangup = reload_on_hangup
        self.stopping = False
        self.exit_code = 0

    def run(self) -> int:
        previous = {number: signal.signal(number, self._on_signal)
                    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            while self.workers:
                self._read_announcements()
                self._reap()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            os.close(self.ready_read)
        return self.exit_code

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        if number == signal.SIGHUP and self.reload_on_hangup:
            self._send(signal.SIGHUP)
        else:
            self._stop(signal.SIGTERM if number == signal.SIGHUP else signal.Signals(number))

    def _stop(self, number: signal.Signals) -> None:
        if not self.stopping:
            self.stopping = True
            self._send(number)

    def _send(self, number: signal.Signals) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass

    def _read_announcements(self) -> None:
        readable, _, _ = select.select([self.ready_read], [], [], 0.2)
        if not readable:
            return
        chunk = os.read(self.ready_read, 4096)
        self.ready_buffer += chunk
        *lines, self.ready_buffer = self.ready_buffer.split(b"\n")
        for line in lines:
            index, _, text = line.decode(errors="replace").partition("\t")
            self.announcements[int(index)] = text
        if not self.announced and len(self.announcements) == self.count and not self.stopping:
            self.announced = True
            first = self.announcements[0].replace("Running on ", f"Running on (each of {self.count} workers) ")
            self.print_line(f"{first}\n(Press CTRL+C to quit)")

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            index = self.workers.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code != 0 or not self.stopping:
                how = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
                if not self.stopping:
                    log.error("worker %d (pid %d) stopped (%s): stopping the other workers", index, pid, how)
                else:
                    log.error("worker %d (pid %d) stopped with %s", index, pid, how)
                self.exit_code = self.exit_code or (code if code > 0 else 1)
                self._stop(signal.SIGTERM)
