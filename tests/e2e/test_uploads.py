"""Files uploaded at once: the file kept under a name is the one its last record describes.

Diagnostics are received into a temporary file, recorded, then moved into
place, one upload of a name at a time; firmware stored and deleted at once
never gives a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from tests.ocpp_client import ChargePointClient, Operator, ws_base

PASSWORD = "upload-secret-1"
UPLOADS = 20


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def server(store_url: str, server_factory: Any, data_dir: Path) -> Any:
    return server_factory.start(store_url, "--call-timeout", "2", "--data-dir", str(data_dir))


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def upload(session: aiohttp.ClientSession, url: str, body: bytes, charge_point_id: str) -> tuple[int, Any]:
    """A charge point's upload, with its own id and password (HTTP Basic)."""
    headers = {"Authorization": aiohttp.BasicAuth(charge_point_id, PASSWORD).encode()}
    async with session.put(url, data=body, headers=headers) as response:
        return response.status, await response.text()


async def twenty_uploads_of_one_name(server: Any, charge_point_id: str) -> list[tuple[int, Any]]:
    url = f"{server.http}/diagnostics/{charge_point_id}/same.log"
    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(
            *(upload(session, url, f"upload number {n}".encode(), charge_point_id) for n in range(UPLOADS))
        )


async def assert_file_matches_last_record(operator: Operator, data_dir: Path, charge_point_id: str) -> None:
    receipts = [e["data"] for e in await operator.events(charge_point_id) if e["type"] == "DiagnosticsUploaded"]
    status, content = await operator.request("GET", f"/api/chargepoints/{charge_point_id}/diagnostics/same.log")
    listed = await operator.get(f"/api/chargepoints/{charge_point_id}/diagnostics")

    assert len(receipts) == UPLOADS
    assert status == 200
    assert hashlib.sha256(content.encode()).hexdigest() == receipts[-1]["sha256"]
    assert [f["name"] for f in listed["files"]] == ["same.log"]
    leftovers = [p.name for p in data_dir.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []  # no temporary file stays behind


async def test_twenty_simultaneous_uploads_of_one_name_while_disconnected_all_land_and_agree(
        server, operator, data_dir):
    await operator.register("UP-OFFLINE", password=PASSWORD)

    results = await twenty_uploads_of_one_name(server, "UP-OFFLINE")

    assert [status for status, _ in results] == [201] * UPLOADS, results
    await assert_file_matches_last_record(operator, data_dir, "UP-OFFLINE")


async def test_twenty_simultaneous_uploads_of_one_name_while_connected_all_land_and_agree(server, operator, data_dir):
    await operator.register("UP-ONLINE", password=PASSWORD)
    async with ChargePointClient(ws_base(server), "UP-ONLINE", password=PASSWORD) as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One"})
        results = await twenty_uploads_of_one_name(server, "UP-ONLINE")

        assert [status for status, _ in results] == [201] * UPLOADS, results
        await assert_file_matches_last_record(operator, data_dir, "UP-ONLINE")


async def test_storing_and_deleting_one_firmware_name_at_once_never_fails(server, operator):
    rounds = 25

    async def store_then_delete() -> tuple[int, int]:
        stored, _ = await operator.request("PUT", "/api/firmware/race.bin", raw=b"image")
        deleted, _ = await operator.request("DELETE", "/api/firmware/race.bin")
        return stored, deleted

    async def list_firmware() -> int:
        return (await operator.request("GET", "/api/firmware"))[0]

    results = await asyncio.gather(*(store_then_delete() for _ in range(rounds)),
                                   *(list_firmware() for _ in range(rounds)))

    pairs, listings = results[:rounds], results[rounds:]
    assert all(stored in (200, 201) and deleted in (204, 404) for stored, deleted in pairs), pairs
    assert set(listings) == {200}
