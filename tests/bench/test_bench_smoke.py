"""The load benchmark runs end to end, on a tiny scale, against the real server and stores.

Speed is never asserted here (it is measured by running `python -m bench.run`);
these tests make sure every scenario still runs, counts what it claims to and
removes its store afterwards, so the README's figures stay reproducible.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_ADMIN, ROOT, postgres_admin_connection

TIMEOUT = 180  # seconds; each run takes a few


def run(*args: str) -> str:
    """Runs a bench command; on a timeout its whole process group (server, load generators) goes too."""
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)  # bench.run's teardown still drops its store
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
        pytest.fail(f"{' '.join(args)} ran over {TIMEOUT} s:\n{out}{err}")
    assert process.returncode == 0, out + err
    return out


def run_bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    results, table = run_bench_results(tmp_path, *args)
    (result,) = results
    return result, table


def run_bench_results(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    figures = tmp_path / "figures.json"
    table = run("bench.run", *args, "--tmpdir", str(tmp_path), "--json", str(figures))
    results = json.loads(figures.read_text())
    for result in results:
        assert_store_removed(result["store_url"])
    return results, table


def assert_store_removed(url: str) -> None:
    if url.startswith("sqlite:///"):
        assert not Path(url.removeprefix("sqlite:///")).parent.exists()
        return
    name = url.rsplit("/", 1)[1]
    with postgres_admin_connection() as conn:
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall()


def assert_answered_without_errors(result: dict[str, Any], cps: int) -> None:
    assert result["errors"] == 0, result["error_kinds"]
    assert result["calls"] > 0 and result["calls_per_s"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["p999_ms"]
    assert result["server_cpu_ms_per_call"] > 0
    assert result["boot_storm_s"] is not None and result["rss_per_conn_kib"] is not None
    assert result["cps"] == cps


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_throughput_scenario(tmp_path: Path, kind: str) -> None:
    if kind == "postgresql":
        postgres_admin_connection().close()  # skips outside CI when PostgreSQL is away
    result, table = run_bench(
        tmp_path, "--scenario", "throughput", "--store", kind, "--cps", "4", "--warmup", "0.5",
        "--duration", "1", "--grace", "5", "--postgres-admin", POSTGRES_ADMIN,
    )
    assert_answered_without_errors(result, 4)
    # Every call of the mix is one durable event, committed in group-commit batches.
    assert result["events_per_call"] == pytest.approx(1.0, abs=0.1)  # /health is read a moment off the window
    assert result["events_per_batch"] >= 1
    assert set(result["per_action"]) == {"MeterValues", "Heartbeat", "StatusNotification"}
    assert f"| throughput | {kind} | 4 | closed |" in table
    if kind == "postgresql":
        assert result["db_cpu_ms_per_call"] is not None


def test_scale_out_scenario_runs_one_and_two_server_workers_on_postgresql(tmp_path: Path) -> None:
    postgres_admin_connection().close()  # skips outside CI when PostgreSQL is away
    results, table = run_bench_results(
        tmp_path, "--scenario", "scale-out", "--cps", "6", "--warmup", "0.5", "--duration", "1", "--grace", "5",
        "--postgres-admin", POSTGRES_ADMIN,
    )
    assert [(r["scenario"], r["store"], r["server_workers"], r["server_processes"]) for r in results] == [
        ("scale-out", "postgresql", 1, 1), ("scale-out", "postgresql", 2, 3)]  # 2 workers and their parent
    for result in results:
        assert_answered_without_errors(result, 6)
    assert "| scale-out | postgresql | 6 | closed, 1 worker |" in table
    assert "| scale-out | postgresql | 6 | closed, 2 workers |" in table
    assert "- scale-out/postgresql: 2 workers " in table and "x one worker's" in table


def test_latency_scenario_with_idle_probe(tmp_path: Path) -> None:
    result, table = run_bench(
        tmp_path, "--scenario", "latency", "--cps", "20", "--rate", "100", "--warmup", "0.5",
        "--duration", "1", "--grace", "5", "--probe-calls", "20", "--probe-pause", "0.001",
    )
    assert_answered_without_errors(result, 20)
    assert result["unfinished"] == 0
    assert result["idle_authorize_errors"] == 0 and result["idle_authorize_p50_ms"] > 0
    assert "| latency | sqlite | 20 | open 100/s |" in table
    assert "idle charge point Authorize p50" in table


def test_scale_scenario_holds_and_reconnects_after_a_restart(tmp_path: Path) -> None:
    result, table = run_bench(
        tmp_path, "--scenario", "scale", "--cps", "30", "--hold", "3", "--heartbeat-interval", "1",
    )
    assert result["errors"] == 0, result["error_kinds"]
    assert result["drops_during_hold"] == 0
    assert result["server_connected_at_end_of_hold"] == 30
    assert result["calls"] > 0  # heartbeats answered during the hold
    assert result["rebooted"] == 30 and result["reconnect_s"] is not None
    assert "| scale | sqlite | 30 |" in table


def test_reference_servers_answer_the_same_load() -> None:
    table = run("bench.reference", "--cps", "3", "--seconds", "0.5", "--warmup", "0.2", "--repeat", "1")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"bare", "ocpp"}
    for row in rows.values():
        assert int(row.split("|")[3].replace(",", "")) > 0  # calls/s: both answered the mix
