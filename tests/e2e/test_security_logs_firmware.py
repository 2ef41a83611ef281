"""The Security Whitepaper's events, logs and signed firmware, end to end on both stores.

Security events reported by charge points are listed per charge point and
across them (filtered by type and time, paged), critical ones counted in
/metrics and shown on the status; GetLog uploads go to a location with a
token of their own; firmware images are signed as they are stored and a
simulated charge point checks the signature of a SignedUpdateFirmware with
the signing certificate's public key before it reports how the update went.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.certificates import certificate_authority, issue
from tests.conftest import ROOT
from tests.e2e.steps import answered, connected
from tests.ocpp_client import Operator, read_model_rows

IMAGE = bytes(range(256)) * 16  # 4096 bytes
# What a hostile charge point may put in a SecurityEventNotification: the schema's longest strings.
HOSTILE_TECH_INFO = ('"; DROP TABLE security_events; --\\\n\u00e9\u4e2d\U0001f512' * 8 + "x" * 255)[:255]
LONG_TYPE = "VendorSpecific" + "Q" * 36  # 50 characters, not a critical type


@pytest.fixture
def server(store_url: str, server_factory: Any, tmp_path: Path) -> Any:
    return server_factory.start(store_url, "--call-timeout", "2", "--data-dir", str(tmp_path / "files"))


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def eventually(probe: Callable[[], Awaitable[Any]], deadline: float = 15) -> Any:
    """Probes an observable condition until it holds, failing after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while not (value := await probe()):
        assert loop.time() < give_up, "the condition never held"
        await asyncio.sleep(0.1)
    return value


async def fetch(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    """A plain HTTP request, as a charge point makes it: no bearer token."""
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kwargs) as response:
            return response.status, await response.read()


async def metrics(server: Any) -> str:
    return (await fetch(f"{server.http}/metrics"))[1].decode()


def critical_count(text: str, type_: str) -> int | None:
    found = re.search(rf'^csms_security_events_critical_total{{node="[^"]+",type="{type_}"}} (\d+)$', text,
                      re.MULTILINE)
    return int(found.group(1)) if found else None


# ---- security events ---------------------------------------------------------------------------


async def report(cp: Any, type_: str, timestamp: str, tech_info: str | None = None) -> dict[str, Any]:
    request = {"type": type_, "timestamp": timestamp, **({"techInfo": tech_info} if tech_info is not None else {})}
    return await cp.call("SecurityEventNotification", request)


async def test_security_events_are_stored_listed_filtered_paged_counted_and_shown(server, operator):
    async with connected(server, operator, "SE-A") as a, connected(server, operator, "SE-B") as b:
        answers = [
            await report(a, "TamperDetectionActivated", "2030-01-01T10:00:00Z", HOSTILE_TECH_INFO),
            await report(a, LONG_TYPE, "2030-01-01T12:00:00+02:00"),  # 10:00 UTC as well, later received
            await report(b, "StartupOfTheDevice", "2030-01-02T08:00:00Z", "boot"),
            await report(a, "SettingSystemTime", "2030-01-03T09:30:00.250Z"),
        ]
    ours = await operator.get("/api/chargepoints/SE-A/security-events")
    typed = await operator.get("/api/security-events?type=TamperDetectionActivated")
    since = await operator.get("/api/security-events?since=2030-01-02T00:00:00Z")
    until = await operator.get("/api/security-events?until=2030-01-02T00:00:00%2B01:00&chargePointId=SE-A")
    critical = await operator.get("/api/chargepoints/SE-A/security-events?critical=true")
    first_page = await operator.get("/api/security-events?limit=2")
    next_page = await operator.get(f"/api/security-events?limit=2&after={first_page['securityEvents'][-1]['id']}")
    view = await operator.get("/api/chargepoints/SE-A")
    listed = {row["id"]: row for row in (await operator.get("/api/chargepoints"))["chargePoints"]}
    counted = await eventually(lambda: _when_counted(server, "SettingSystemTime"))

    assert answers == [{}, {}, {}, {}]
    events = ours["securityEvents"]
    assert [(e["type"], e["timestamp"], e["critical"], e["source"]) for e in events] == [
        ("TamperDetectionActivated", "2030-01-01T10:00:00.000Z", True, "charge_point"),
        (LONG_TYPE, "2030-01-01T10:00:00.000Z", False, "charge_point"),
        ("SettingSystemTime", "2030-01-03T09:30:00.250Z", True, "charge_point"),
    ]
    assert events[0]["techInfo"] == HOSTILE_TECH_INFO and len(HOSTILE_TECH_INFO) == 255
    assert events[1]["techInfo"] is None and len(LONG_TYPE) == 50
    assert all(e["chargePointId"] == "SE-A" and e["receivedAt"] for e in events)
    assert [e["version"] for e in events] == sorted(e["version"] for e in events)
    assert [(e["chargePointId"], e["type"]) for e in typed["securityEvents"]] == [("SE-A", "TamperDetectionActivated")]
    assert [e["type"] for e in since["securityEvents"]] == ["StartupOfTheDevice", "SettingSystemTime"]
    assert [e["type"] for e in until["securityEvents"]] == ["TamperDetectionActivated", LONG_TYPE]
    assert [e["type"] for e in critical["securityEvents"]] == ["TamperDetectionActivated", "SettingSystemTime"]
    paged = first_page["securityEvents"] + next_page["securityEvents"]
    assert [e["type"] for e in paged] == ["TamperDetectionActivated", LONG_TYPE, "StartupOfTheDevice",
                                          "SettingSystemTime"]
    assert len({e["id"] for e in paged}) == 4
    # The latest critical event, on the live status and on the list from the status read model.
    assert view["lastCriticalSecurityEvent"]["type"] == "SettingSystemTime"
    assert listed["SE-A"]["lastCriticalSecurityEvent"]["type"] == "SettingSystemTime"
    assert listed["SE-B"]["lastCriticalSecurityEvent"]["techInfo"] == "boot"
    assert (critical_count(counted, "TamperDetectionActivated"), critical_count(counted, "StartupOfTheDevice"),
            critical_count(counted, "SettingSystemTime"), critical_count(counted, LONG_TYPE)) == (1, 1, 1, None)


async def _when_counted(server: Any, type_: str) -> str | None:
    text = await metrics(server)
    return text if critical_count(text, type_) else None


async def test_a_rebuild_gives_the_security_events_the_live_read_model_held(store_url, server, operator):
    async with connected(server, operator, "SE-R1") as a, connected(server, operator, "SE-R2") as b:
        for n in range(3):
            await report(a, "ResetOrReboot", f"2030-01-0{n + 1}T00:00:00Z", f"reboot {n}")
            await report(b, "InvalidFirmwareSignature", f"2030-02-0{n + 1}T00:00:00Z")
    live = await operator.get("/api/security-events")
    server.stop()  # read models complete (the last commits applied) once stopped

    rebuilt = subprocess.run([sys.executable, "-m", "app", "projections", "rebuild", "--store", store_url],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    rows = read_model_rows(store_url, "SELECT id, charge_point_id, version, type FROM security_events ORDER BY id")

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert [(row["id"], row["charge_point_id"], row["version"], row["type"]) for row in rows] == [
        (event["id"], event["chargePointId"], event["version"], event["type"]) for event in live["securityEvents"]]
    assert len(rows) == 6


@pytest.mark.parametrize("query, named", [
    ("since=yesterday", "since"), ("until=2030-13-01T00:00:00Z", "until"), ("after=-1", "after"),
    ("limit=x", "limit"), ("critical=maybe", "critical"), ("type=a%00b", "type"),
])
async def test_a_bad_security_event_filter_is_a_400_that_names_it(server, operator, query, named):
    await operator.register("SE-BAD")
    for path in ("/api/security-events", "/api/chargepoints/SE-BAD/security-events"):
        status, body = await operator.request("GET", f"{path}?{query}")
        assert status == 400 and named in body["error"], (path, status, body)
    unknown = await operator.request("GET", "/api/chargepoints/SE-NOBODY/security-events")
    assert unknown[0] == 404


# ---- GetLog ------------------------------------------------------------------------------------


async def get_log(cp: Any, operator: Operator, server: Any, request_id: int,
                  reply: dict[str, Any]) -> tuple[list[Any], tuple[int, Any]]:
    payload = {"logType": "SecurityLog", "requestId": request_id,
               "log": {"remoteLocation": f"{server.http}/logs/{cp.id}/"}}
    return await answered(cp, operator.command(cp.id, "GetLog", payload), "GetLog", reply)


async def test_a_get_log_upload_goes_to_its_own_token_and_is_recorded_with_its_sha256(server, operator):
    log = b"2030-01-01T10:00:00Z tamper switch opened\n" * 50
    await operator.register("LOG-2")
    async with connected(server, operator, "LOG-1") as cp:
        call, (status, body) = await get_log(cp, operator, server, 41, {"status": "Accepted",
                                                                        "filename": "security.log"})
        location = call[3]["log"]["remoteLocation"]
        await cp.call("LogStatusNotification", {"status": "Uploading", "requestId": 41})
        uploaded = await fetch(f"{location}security.log", "PUT", data=log)
        await cp.call("LogStatusNotification", {"status": "Uploaded", "requestId": 41})
        # Another GetDiagnostics' token is no GetLog location, and no token is none.
        diagnostics_call, _ = await answered(
            cp, operator.command(cp.id, "GetDiagnostics", {"location": f"{server.http}/diagnostics/LOG-1/"}),
            "GetDiagnostics", {})
        diagnostics_token = diagnostics_call[3]["location"].rstrip("/").rsplit("/", 1)[1]
        refused = [
            await fetch(f"{server.http}/logs/LOG-1/{diagnostics_token}/forged.log", "PUT", data=b"forged"),
            await fetch(f"{server.http}/logs/LOG-1/{'A' * 43}/forged.log", "PUT", data=b"forged"),
            await fetch(f"{location.replace('/LOG-1/', '/LOG-2/')}forged.log", "PUT", data=b"forged"),
        ]
    history = await operator.events("LOG-1")
    view = await operator.get("/api/chargepoints/LOG-1")
    listing = await operator.get("/api/chargepoints/LOG-1/logs")
    downloaded = await operator.request("GET", "/api/chargepoints/LOG-1/logs/security.log")

    assert (status, body) == (200, {"status": "Accepted", "filename": "security.log"})
    assert re.fullmatch(rf"{re.escape(server.http)}/logs/LOG-1/[A-Za-z0-9_-]{{43}}/", location)
    assert uploaded[0] == 201
    assert [status for status, _ in refused] == [401, 401, 401]
    by_type = {event["type"]: event["data"] for event in history}
    receipt = {name: by_type["LogUploaded"][name] for name in ("fileName", "size", "sha256", "requestId", "logType")}
    assert receipt == {"fileName": "security.log", "size": len(log), "sha256": hashlib.sha256(log).hexdigest(),
                       "requestId": 41, "logType": "SecurityLog"}
    assert by_type["LogRequestAnswered"]["filename"] == "security.log"
    sent = next(e["data"] for e in history if e["type"] == "CallSent" and e["data"]["action"] == "GetLog")
    assert sent["request"]["log"]["remoteLocation"] == f"{server.http}/logs/LOG-1/<hidden>/"
    assert [e["data"]["request"]["status"] for e in history if e["type"] == "LogStatusReported"] == [
        "Uploading", "Uploaded"]
    assert view["logStatus"] == "Uploaded"
    assert view["logUpload"]["requestId"] == 41 and view["logUpload"]["filename"] == "security.log"
    assert view["logUpload"]["file"]["sha256"] == hashlib.sha256(log).hexdigest()
    assert [f["name"] for f in listing["files"]] == ["security.log"]
    assert downloaded == (200, log.decode())


# ---- signed firmware ---------------------------------------------------------------------------


def signing_files(folder: Path, kind: str) -> tuple[str, str]:
    """A Firmware Signing certificate and its key (RSA or ECDSA), issued by a CA of the manufacturer's."""
    ca = certificate_authority("Firmware CA", kind="rsa")
    return issue(ca, "Firmware Signing", organization="AmpLedger Tests", kind=kind).write(folder, f"signing-{kind}")


def verified(image: bytes, firmware: dict[str, Any]) -> bool:
    """What a charge point does before it installs: the signature checked with the certificate's public key."""
    public_key = x509.load_pem_x509_certificate(firmware["signingCertificate"].encode()).public_key()
    signature = base64.b64decode(firmware["signature"])
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, image, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(signature, image, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("kind, algorithm", [("rsa", "RSA-SHA256"), ("ec", "ECDSA-SHA256")])
async def test_a_signed_update_carries_a_signature_the_charge_point_verifies_and_the_rollout_follows_it(
        store_url, server_factory, tmp_path, kind, algorithm):
    key, certificate = signing_files(tmp_path, kind)[::-1]
    server = server_factory.start(store_url, "--call-timeout", "2", "--data-dir", str(tmp_path / "files"),
                                  "--firmware-signing-key", key, "--firmware-signing-cert", certificate)
    async with Operator(server.http) as operator:
        status, stored = await operator.request("PUT", "/api/firmware/cp-3.0.bin", raw=IMAGE)
        listed = (await operator.get("/api/firmware"))["firmware"]
        request = {"requestId": 7, "firmware": {"location": stored["url"], "retrieveDateTime": "2030-01-01T00:00:00Z"}}
        stories = {
            "SFW-OK": ("Accepted", ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]),
            "SFW-TAMPERED": ("Accepted", ["Downloading", "Downloaded", "InvalidSignature"]),
            "SFW-UNTRUSTED": ("InvalidCertificate", []),
            "SFW-WAITING": ("Accepted", []),
        }
        checks = {}
        for charge_point_id, (answer, statuses) in stories.items():
            async with connected(server, operator, charge_point_id) as cp:
                call, (sent, _) = await answered(cp, operator.command(cp.id, "SignedUpdateFirmware", request),
                                                 "SignedUpdateFirmware", {"status": answer})
                firmware = call[3]["firmware"]
                downloaded = (await fetch(firmware["location"]))[1]
                if charge_point_id == "SFW-TAMPERED":
                    downloaded = downloaded[:-1] + b"\x00"  # changed on the way
                checks[charge_point_id] = (sent, verified(downloaded, firmware))
                for reported in statuses:
                    await cp.call("SignedFirmwareStatusNotification", {"status": reported, "requestId": 7})
        rollout = await operator.get("/api/firmware/rollout")
        view = await operator.get("/api/chargepoints/SFW-OK")
        history = await operator.event_types("SFW-UNTRUSTED")

    assert status == 201 and stored["signature"]["algorithm"] == algorithm
    assert listed[0]["signature"] == stored["signature"]
    assert stored["signature"]["signingCertificate"] == Path(certificate).read_text()
    assert checks == {"SFW-OK": (200, True), "SFW-TAMPERED": (200, False), "SFW-UNTRUSTED": (200, True),
                      "SFW-WAITING": (200, True)}
    rows = {row["chargePointId"]: row for row in rollout["chargePoints"]}
    assert {name: (rows[name]["state"], rows[name]["lastSignedUpdate"]["lastStatus"]) for name in stories} == {
        "SFW-OK": ("installed", "Installed"), "SFW-TAMPERED": ("failed", "InvalidSignature"),
        "SFW-UNTRUSTED": ("failed", None), "SFW-WAITING": ("pending", None),
    }
    assert rows["SFW-UNTRUSTED"]["lastSignedUpdate"]["answer"] == "InvalidCertificate"
    assert rollout["counts"] == {"installed": 1, "failed": 2, "pending": 1}
    assert view["signedFirmware"]["state"] == "installed" and view["signedFirmware"]["requestId"] == 7
    assert view["signedFirmware"]["location"] == stored["url"]
    assert "SignedFirmwareUpdateRequested" in history and "SignedFirmwareUpdateAnswered" in history


async def test_an_image_stored_without_a_signing_key_is_not_sent_signed(server, operator):
    stored = (await operator.request("PUT", "/api/firmware/plain.bin", raw=IMAGE))[1]
    async with connected(server, operator, "SFW-PLAIN") as cp:
        request = {"requestId": 1, "firmware": {"location": stored["url"], "retrieveDateTime": "2030-01-01T00:00:00Z"}}
        unsigned = await operator.command(cp.id, "SignedUpdateFirmware", request)
        missing = await operator.command(cp.id, "SignedUpdateFirmware", {
            **request, "firmware": {**request["firmware"], "location": f"{server.http}/firmware/none.bin"}})
        nothing_sent = cp.incoming_calls.empty()

    assert stored["signature"] is None
    assert unsigned[0] == 422 and "not signed" in unsigned[1]["error"]
    assert missing[0] == 422 and "none.bin" in missing[1]["error"]
    assert nothing_sent


@pytest.mark.parametrize("mismatch", ["other key", "no certificate", "not a key"])
def test_a_signing_key_and_certificate_that_do_not_fit_stop_serve_with_a_message(tmp_path, mismatch):
    key, certificate = signing_files(tmp_path, "ec")[::-1]
    (tmp_path / "other").mkdir()
    other_key, _ = signing_files(tmp_path / "other", "rsa")[::-1]
    options = {
        "other key": ["--firmware-signing-key", other_key, "--firmware-signing-cert", certificate],
        "no certificate": ["--firmware-signing-key", key],
        "not a key": ["--firmware-signing-key", certificate, "--firmware-signing-cert", certificate],
    }[mismatch]
    finished = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--store", f"sqlite:///{tmp_path / 's.sqlite3'}", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert finished.returncode == 2
    assert finished.stderr.startswith("csms: ") and "Traceback" not in finished.stderr
