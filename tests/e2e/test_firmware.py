"""Firmware Management end to end: images stored and served, updates followed through
a rollout, diagnostics uploaded by charge points and read back by operators.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.e2e.steps import answered, connected, exchange
from tests.ocpp_client import Operator

MAX_FILE_SIZE = 4096
IMAGE = bytes(range(256)) * 8  # 2048 bytes


@pytest.fixture
def server(store_url: str, server_factory: Any, tmp_path: Path) -> Any:
    """A server whose data directory is this test's own, with a small file size limit."""
    return server_factory.start(store_url, "--call-timeout", "2", "--data-dir", str(tmp_path / "files"),
                                "--max-file-size", str(MAX_FILE_SIZE))


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def fetch(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    """A plain HTTP request, as a charge point makes it: no token."""
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kwargs) as response:
            return response.status, await response.read()


async def test_firmware_images_are_stored_listed_and_served_to_charge_points_without_token(server, operator):
    created = await operator.request("PUT", "/api/firmware/cp-2.0.bin", raw=IMAGE)
    replaced = await operator.request("PUT", "/api/firmware/cp-2.0.bin", raw=IMAGE[::-1])
    odd_name = await operator.request("PUT", "/api/firmware/fw%20v3%20(beta).bin", raw=b"three")
    too_big = await operator.request("PUT", "/api/firmware/huge.bin", raw=b"x" * (MAX_FILE_SIZE + 1))
    listed = (await operator.get("/api/firmware"))["firmware"]
    served = await fetch(f"{server.http}/firmware/cp-2.0.bin")
    missing = await fetch(f"{server.http}/firmware/nothing.bin")
    deleted = await operator.request("DELETE", "/api/firmware/fw_v3_beta_.bin")

    assert created[0] == 201 and replaced[0] == 200
    assert created[1]["name"] == "cp-2.0.bin" and created[1]["size"] == len(IMAGE)
    assert created[1]["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert created[1]["url"] == f"{server.http}/firmware/cp-2.0.bin"
    assert odd_name[0] == 201 and odd_name[1]["name"] == "fw_v3_beta_.bin"
    assert too_big[0] == 413
    assert [(f["name"], f["size"]) for f in listed] == [("cp-2.0.bin", len(IMAGE)), ("fw_v3_beta_.bin", 5)]
    assert served == (200, IMAGE[::-1])
    assert missing[0] == 404
    assert deleted[0] == 204
    assert [f["name"] for f in (await operator.get("/api/firmware"))["firmware"]] == ["cp-2.0.bin"]


async def test_the_rollout_follows_each_update_firmware_through_its_status_notifications(server, operator):
    location = (await operator.request("PUT", "/api/firmware/cp-2.0.bin", raw=IMAGE))[1]["url"]
    update = {"location": location, "retrieveDate": "2030-01-01T00:00:00Z"}
    stories = {
        "FW-OK": ["Downloading", "Downloaded", "Installing", "Installed"],
        "FW-BROKEN": ["Downloading", "DownloadFailed"],
        "FW-WAITING": [],
    }
    for charge_point_id, statuses in stories.items():
        async with connected(server, operator, charge_point_id) as cp:
            await exchange(cp, operator, "UpdateFirmware", update, {})
            if statuses:
                downloaded = await fetch(location)  # the charge point fetches the image itself
                assert downloaded == (200, IMAGE)
            for status in statuses:
                await cp.call("FirmwareStatusNotification", {"status": status})
            if charge_point_id == "FW-OK":  # it reboots into the new firmware
                await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One",
                                                   "firmwareVersion": "2.0"})
    await operator.register("FW-NEVER")
    rollout = await operator.get("/api/firmware/rollout")

    rows = {row["chargePointId"]: row for row in rollout["chargePoints"]}
    assert {name: rows[name]["state"] for name in (*stories, "FW-NEVER")} == {
        "FW-OK": "installed", "FW-BROKEN": "failed", "FW-WAITING": "pending", "FW-NEVER": None,
    }
    assert rows["FW-OK"]["firmwareVersion"] == "2.0" and rows["FW-BROKEN"]["firmwareVersion"] == "1.0"
    assert rows["FW-BROKEN"]["lastUpdate"]["lastStatus"] == "DownloadFailed"
    assert rows["FW-WAITING"]["lastUpdate"]["location"] == location
    assert rows["FW-NEVER"]["lastUpdate"] is None
    assert rollout["counts"] == {"installed": 1, "failed": 1, "pending": 1}


async def test_diagnostics_uploaded_by_put_or_multipart_post_are_listed_and_downloadable(server, operator):
    async with connected(server, operator, "FW-DIAG") as cp:
        call, _ = await answered(cp, operator.command("FW-DIAG", "GetDiagnostics",
                                                      {"location": f"{server.http}/diagnostics/FW-DIAG/"}),
                                 "GetDiagnostics", {"fileName": "diag-1.log"})
        location = call[3]["location"]  # this request's own, with its token
        await cp.call("DiagnosticsStatusNotification", {"status": "Uploading"})
        put = await fetch(location + "diag-1.log", "PUT", data=b"first log")
        form = aiohttp.FormData()
        form.add_field("note", "not a file")
        form.add_field("file", b"second log", filename="diag-2.tar.gz", content_type="application/gzip")
        posted = await fetch(location, "POST", data=form)
        await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"})
    listed = await operator.get("/api/chargepoints/FW-DIAG/diagnostics")
    first = await operator.request("GET", "/api/chargepoints/FW-DIAG/diagnostics/diag-1.log")
    second = await operator.request("GET", "/api/chargepoints/FW-DIAG/diagnostics/diag-2.tar.gz")
    missing = await operator.request("GET", "/api/chargepoints/FW-DIAG/diagnostics/nothing.log")
    status = await operator.get("/api/chargepoints/FW-DIAG")
    receipts = [e["data"] for e in await operator.events("FW-DIAG") if e["type"] == "DiagnosticsUploaded"]

    assert put[0] == 201 and posted[0] == 201
    assert [(f["name"], f["size"]) for f in listed["files"]] == [("diag-1.log", 9), ("diag-2.tar.gz", 10)]
    assert listed["files"][0]["url"] == "/api/chargepoints/FW-DIAG/diagnostics/diag-1.log"
    assert first == (200, "first log") and second[0] == 200
    assert missing[0] == 404
    assert status["diagnosticsStatus"] == "Uploaded"
    assert [(r["fileName"], r["size"]) for r in receipts] == [("diag-1.log", 9), ("diag-2.tar.gz", 10)]
    assert receipts[0]["sha256"] == hashlib.sha256(b"first log").hexdigest()


async def test_uploads_are_refused_for_unknown_charge_points_bad_names_and_big_files(server, operator):
    await operator.register("FW-LIMITS", password="limits-secret")
    base = f"{server.http}/diagnostics"
    auth = {"Authorization": aiohttp.BasicAuth("FW-LIMITS", "limits-secret").encode()}
    unknown = await fetch(f"{base}/FW-NOBODY/x.log", "PUT", data=b"x")
    too_big = await fetch(f"{base}/FW-LIMITS/big.log", "PUT", data=b"x" * (MAX_FILE_SIZE + 1), headers=auth)
    streamed_too_big = await fetch(f"{base}/FW-LIMITS/chunked.log", "POST",
                                   data=_chunks(b"x" * 1024, MAX_FILE_SIZE // 1024 + 1), headers=auth)
    bad_name = await fetch(f"{base}/FW-LIMITS/...", "PUT", data=b"x", headers=auth)
    sneaky = await fetch(f"{base}/FW-LIMITS/..%5C..%5Csecret.log", "PUT", data=b"x", headers=auth)
    no_file = await fetch(f"{base}/FW-LIMITS/", "POST",
                          data=aiohttp.FormData({"note": "no file here"}, default_to_multipart=True), headers=auth)
    listed = await operator.get("/api/chargepoints/FW-LIMITS/diagnostics")

    assert unknown[0] == 404
    assert too_big[0] == 413 and streamed_too_big[0] == 413
    assert bad_name[0] == 400 and no_file[0] == 400
    assert sneaky[0] == 201
    assert [f["name"] for f in listed["files"]] == ["secret.log"]  # kept inside its own directory


async def _chunks(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    """A body without Content-Length, so only the streamed size can be checked."""
    for _ in range(count):
        yield chunk


async def test_the_firmware_url_is_the_listening_address_whatever_host_the_request_names(server, operator):
    stored = await operator.request("PUT", "/api/firmware/fw.bin", raw=b"image", headers={"Host": "evil.example"})
    listed = await operator.request("GET", "/api/firmware", headers={"Host": "evil.example"})

    assert stored[1]["url"] == f"{server.http}/firmware/fw.bin"
    assert [entry["url"] for entry in listed[1]["firmware"]] == [f"{server.http}/firmware/fw.bin"]


async def test_the_firmware_url_starts_with_the_configured_public_url(store_url, server_factory, tmp_path):
    server = server_factory.start(store_url, "--data-dir", str(tmp_path / "files"),
                                  "--public-url", "https://csms.example.com/ocpp-files/")
    async with Operator(server.http) as operator:
        stored = await operator.request("PUT", "/api/firmware/fw.bin", raw=b"image")

    assert stored[1]["url"] == "https://csms.example.com/ocpp-files/firmware/fw.bin"


@pytest.mark.parametrize("url", ["ftp://csms.example.com", "csms.example.com", "https://", "https://x/?a=1"])
def test_a_public_url_that_is_no_http_url_stops_serve_with_a_message(url, tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--store", f"sqlite:///{tmp_path / 's.sqlite3'}", "--public-url", url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert finished.returncode == 2
    assert "--public-url" in finished.stderr
