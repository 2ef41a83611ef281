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

from tests.e2e.steps import answered
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
    async with session.put(url, data=body, headers=basic(charge_point_id, PASSWORD)) as response:
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


# ---- who may upload: the token of a GetDiagnostics location, or the charge point's Basic auth ----


async def put(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.put(url, data=body, headers=headers or {}) as response:
            return response.status, response.headers.get("WWW-Authenticate", ""), await response.text()


def basic(charge_point_id: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.BasicAuth(charge_point_id, password).encode()}


async def test_an_upload_without_credentials_is_refused_and_nothing_is_kept(server, operator, data_dir):
    await operator.register("UP-LOCKED", password=PASSWORD)
    await operator.register("UP-OPEN")

    refused = [
        await put(f"{server.http}/diagnostics/UP-LOCKED/x.log", b"forged"),
        await put(f"{server.http}/diagnostics/UP-OPEN/x.log", b"forged"),
        await put(f"{server.http}/diagnostics/UP-OPEN/x.log", b"forged", basic("UP-OPEN", "anything")),
        await put(f"{server.http}/diagnostics/UP-LOCKED/x.log", b"forged", basic("UP-LOCKED", "wrong")),
        await put(f"{server.http}/diagnostics/UP-LOCKED/x.log", b"forged", basic("UP-OPEN", PASSWORD)),
        await put(f"{server.http}/diagnostics/UP-LOCKED/{'A' * 43}/x.log", b"forged"),
        await put(f"{server.http}/diagnostics/UP-LOCKED/not-a-token/x.log", b"forged"),
    ]

    assert [(status, challenge.startswith("Basic")) for status, challenge, _ in refused] == [(401, True)] * 7
    for charge_point_id in ("UP-LOCKED", "UP-OPEN"):
        assert "DiagnosticsUploaded" not in await operator.event_types(charge_point_id)
        assert (await operator.get(f"/api/chargepoints/{charge_point_id}/diagnostics"))["files"] == []
    assert not (data_dir / "diagnostics").exists() or not any((data_dir / "diagnostics").rglob("*.log"))


async def test_a_charge_point_with_a_password_may_upload_with_its_basic_auth(server, operator):
    await operator.register("UP-BASIC", password=PASSWORD)

    status, _, body = await put(f"{server.http}/diagnostics/UP-BASIC/basic.log", b"with basic", basic("UP-BASIC",
                                                                                                     PASSWORD))

    assert status == 201, body
    assert "DiagnosticsUploaded" in await operator.event_types("UP-BASIC")


async def test_get_diagnostics_gets_a_location_of_its_own_that_survives_a_restart(server, operator):
    await operator.register("UP-TOKEN")
    await operator.register("UP-OTHER")
    async with ChargePointClient(ws_base(server), "UP-TOKEN") as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One"})
        call, (status, _) = await answered(
            cp, operator.command("UP-TOKEN", "GetDiagnostics", {"location": f"{server.http}/diagnostics/UP-TOKEN/"}),
            "GetDiagnostics", {"fileName": "diag.log"})
        elsewhere, _ = await answered(
            cp, operator.command("UP-TOKEN", "GetDiagnostics", {"location": "ftp://logs.example.com/up/"}),
            "GetDiagnostics", {})
    location = call[3]["location"]
    token = location.rstrip("/").rsplit("/", 1)[1]
    server.restart()

    uploaded = await put(location + "diag.log", b"the log")
    other_charge_point = await put(f"{server.http}/diagnostics/UP-OTHER/{token}/diag.log", b"forged")
    history = await operator.events("UP-TOKEN")

    assert status == 200
    assert location.startswith(f"{server.http}/diagnostics/UP-TOKEN/") and len(token) >= 43
    assert elsewhere[3]["location"] == "ftp://logs.example.com/up/"  # not ours: sent as given
    assert uploaded[0] == 201, uploaded
    assert other_charge_point[0] == 401
    assert [e["data"]["fileName"] for e in history if e["type"] == "DiagnosticsUploaded"] == ["diag.log"]
    assert token not in str(history)  # a secret: never in history
    sent = [e["data"] for e in history if e["type"] == "CallSent" and e["data"].get("action") == "GetDiagnostics"]
    assert sent and sent[0]["request"]["location"] == f"{server.http}/diagnostics/UP-TOKEN/<hidden>/", sent
