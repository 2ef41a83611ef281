"""Security profiles 2 and 3 over real TLS handshakes (OCPP 1.6 Security Whitepaper, section 2).

A `csms serve` with an RSA and an ECDSA server pair, a CA for client
certificates and a CPO name, plain WS on --port and TLS on --tls-port; charge
points connect with aiohttp over wss:// with the certificates made here
(tests/certificates.py): a good one, a second CA's, an expired one, a wrong
CN, a wrong O. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest

from tests.certificates import Issued, certificate_authority, issue
from tests.conftest import ROOT, Server, free_port
from tests.ocpp_client import ChargePointClient, Operator, event_field, fresh_store

CPO = "Test CPO"
PASSWORD = "secret-password-16"
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
DEADLINE = 20.0


class Pki:
    """The certificates of these tests, written to a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server_ca = certificate_authority("Test Server CA")
        self.client_ca = certificate_authority("Test Charge Point CA", organization=CPO)
        self.other_ca = certificate_authority("Another CA")
        self.rsa = issue(self.server_ca, "localhost", kind="rsa", server=True, dns_names=("localhost",))
        self.ecdsa = issue(self.server_ca, "localhost", kind="ec", server=True, dns_names=("localhost",))
        self.rsa_files = self.rsa.write(folder, "server-rsa")
        self.ecdsa_files = self.ecdsa.write(folder, "server-ecdsa")
        self.client_ca_file = self.client_ca.write(folder, "client-ca")[0]
        self.server_ca_file = self.server_ca.write(folder, "server-ca")[0]

    def server_options(self) -> list[str]:
        return ["--tls-cert", self.rsa_files[0], "--tls-key", self.rsa_files[1],
                "--tls-cert", self.ecdsa_files[0], "--tls-key", self.ecdsa_files[1],
                "--tls-client-ca", self.client_ca_file, "--cpo-name", CPO]

    def client(self, certificate: Issued | None = None, stem: str = "client") -> ssl.SSLContext:
        """A charge point's TLS context: it trusts the server CA and presents ``certificate``."""
        context = ssl.create_default_context(cafile=self.server_ca_file)
        context.check_hostname = False  # the server listens on 127.0.0.1; its certificate names localhost
        if certificate is not None:
            context.load_cert_chain(*certificate.write(self.folder, stem))
        return context

    def charge_point_certificate(self, common_name: str, organization: str | None = CPO, **options: Any) -> Issued:
        return issue(self.client_ca, common_name, organization, **options)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


class TlsServer:
    def __init__(self, server: Server, tls_port: int) -> None:
        self.server = server
        self.tls_port = tls_port

    @property
    def plain_ws(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    @property
    def wss(self) -> str:
        return f"wss://127.0.0.1:{self.tls_port}"

    @property
    def http(self) -> str:
        return self.server.http


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tls_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               pki: Pki) -> Iterator[TlsServer]:
    tls_port = free_port()
    with fresh_store(request.param, tmp_path_factory.mktemp("store")) as store:
        server = Server(store, "--call-timeout", "2", *pki.server_options(), "--tls-port", str(tls_port))
        try:
            yield TlsServer(server.start(), tls_port)
        finally:
            server.stop()
        server.check_output()


async def refused_status(url: str, charge_point_id: str, tls: ssl.SSLContext | None = None,
                         password: str | None = None) -> int:
    """The HTTP status a handshake is refused with (it must be refused)."""
    client = ChargePointClient(url, charge_point_id, password=password, tls=tls)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.connect()
    return refused.value.status


async def tls_refused(url: str, charge_point_id: str, tls: ssl.SSLContext) -> None:
    """The TLS handshake itself fails (before any HTTP)."""
    client = ChargePointClient(url, charge_point_id, tls=tls)
    with pytest.raises(aiohttp.ClientError):
        await client.connect()


async def observed(operator: Operator, charge_point_id: str) -> list[tuple[str, str]]:
    return [(event_field(event, "type"), event_field(event, "techInfo"))
            for event in await operator.events(charge_point_id) if event["type"] == "SecurityEventObserved"]


async def metric(http: str, name: str, tls: ssl.SSLContext | None = None) -> float:
    """One sample of /metrics (0 when it has none yet); with ``tls``, over HTTPS."""
    connector = aiohttp.TCPConnector(ssl=tls) if tls is not None else None
    async with aiohttp.ClientSession(connector=connector) as session, session.get(f"{http}/metrics") as response:
        for line in (await response.text()).splitlines():
            # Every sample is labelled with its node first: name{node="...",type="..."} reads as name{type="..."}.
            line = re.sub(r'\{node="[^"]*"\}', "", re.sub(r'\{node="[^"]*",', "{", line))
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def raising(operator: Operator, charge_point_id: str, profile: int) -> asyncio.Future[tuple[int, Any]]:
    """POST .../security-profile, under way while the charge point answers the ChangeConfiguration."""
    return asyncio.ensure_future(operator.request(
        "POST", f"/api/chargepoints/{charge_point_id}/security-profile", {"profile": profile}))


async def register(operator: Operator, charge_point_id: str, **body: Any) -> dict[str, Any]:
    status, reply = await operator.request("PUT", f"/api/chargepoints/{charge_point_id}", body)
    assert status in (200, 201), (status, reply)
    return reply


# ---- profile 2: TLS and the password -------------------------------------------------------------


async def test_profile_2_needs_tls_and_its_password(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        view = await register(operator, "P2-A", password=PASSWORD, securityProfile=2)
        assert view["securityProfile"] == 2 and view["certificateName"] == "P2-A"
        assert await refused_status(tls_server.plain_ws, "P2-A", password=PASSWORD) == 403
        assert await refused_status(tls_server.wss, "P2-A", tls=pki.client()) == 401
        assert await refused_status(tls_server.wss, "P2-A", tls=pki.client(), password="wrong-password-16") == 401
        async with ChargePointClient(tls_server.wss, "P2-A", password=PASSWORD, tls=pki.client()) as cp:
            assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
        # The plain connection is on its history, as the central system's own security event.
        assert await observed(operator, "P2-A") == [
            ("SecurityProfileNotMet", "security profile 2 needs TLS (wss://); this was plain ws://")]


async def test_a_refusal_while_connected_is_recorded_through_the_live_connection(tls_server: TlsServer,
                                                                                  pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "P2-LIVE", password=PASSWORD, securityProfile=2)
        async with ChargePointClient(tls_server.wss, "P2-LIVE", password=PASSWORD, tls=pki.client()) as cp:
            assert await refused_status(tls_server.plain_ws, "P2-LIVE", password=PASSWORD) == 403
            # Refused before the upgrade: no takeover, the secure connection lives on.
            assert (await cp.call("Heartbeat", {}))["currentTime"]
            assert [kind for kind, _ in await observed(operator, "P2-LIVE")] == ["SecurityProfileNotMet"]
            assert (await operator.get("/api/chargepoints/P2-LIVE"))["online"] is True


async def test_a_stronger_connection_than_the_profile_asks_is_accepted(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "P1-TLS", password=PASSWORD)
        async with ChargePointClient(tls_server.wss, "P1-TLS", password=PASSWORD, tls=pki.client()) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]
        # Profile 2, and a client certificate that identifies it instead of the password.
        await register(operator, "P2-CERT", password=PASSWORD, securityProfile=2)
        good = pki.client(pki.charge_point_certificate("P2-CERT"), "p2-cert")
        async with ChargePointClient(tls_server.wss, "P2-CERT", tls=good) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]


# ---- profile 3: the client certificate -------------------------------------------------------------


async def test_profile_3_admits_only_its_own_certificate(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "P3-A", securityProfile=3)
        good = pki.client(pki.charge_point_certificate("P3-A"), "p3-good")
        async with ChargePointClient(tls_server.wss, "P3-A", tls=good) as cp:
            assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
        assert await refused_status(tls_server.plain_ws, "P3-A") == 403
        assert await refused_status(tls_server.wss, "P3-A", tls=pki.client()) == 403
        wrong_cn = pki.client(pki.charge_point_certificate("P3-OTHER"), "p3-wrong-cn")
        assert await refused_status(tls_server.wss, "P3-A", tls=wrong_cn) == 403
        wrong_o = pki.client(pki.charge_point_certificate("P3-A", "Another CPO"), "p3-wrong-o")
        assert await refused_status(tls_server.wss, "P3-A", tls=wrong_o) == 403
        seen = await observed(operator, "P3-A")
        assert [kind for kind, _ in seen] == ["SecurityProfileNotMet", "InvalidChargePointCertificate"]
        assert "plain ws://" in seen[0][1] and "CN 'P3-OTHER'" in seen[1][1]
        # One event per charge point and type a minute: no certificate and the wrong O were refused and
        # counted, not written.
        for kind in ("SecurityProfileNotMet", "InvalidChargePointCertificate"):
            assert await metric(tls_server.http, f'csms_refused_connections_unrecorded_total{{type="{kind}"}}') >= 1


async def test_the_certificate_name_replaces_the_id(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        view = await register(operator, "P3-NAMED", securityProfile=3, certificateName="SERIAL-0042")
        assert view["certificateName"] == "SERIAL-0042"
        named = pki.client(pki.charge_point_certificate("SERIAL-0042"), "p3-named")
        async with ChargePointClient(tls_server.wss, "P3-NAMED", tls=named) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]
        by_id = pki.client(pki.charge_point_certificate("P3-NAMED"), "p3-by-id")
        assert await refused_status(tls_server.wss, "P3-NAMED", tls=by_id) == 403
        history = [event["type"] for event in await operator.events("P3-NAMED")]
        assert {"SecurityProfileSet", "CertificateNameSet"} <= set(history)


async def test_an_unverifiable_or_expired_certificate_fails_the_handshake(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "P3-BAD", securityProfile=3)
    failures = 'csms_tls_handshake_failures_total{reason="client_certificate"}'
    before = await metric(tls_server.http, failures)
    foreign = pki.client(issue(pki.other_ca, "P3-BAD", CPO), "p3-foreign")
    await tls_refused(tls_server.wss, "P3-BAD", foreign)
    now = dt.datetime.now(dt.UTC)
    expired = pki.charge_point_certificate("P3-BAD", not_before=now - dt.timedelta(days=30),
                                           not_after=now - dt.timedelta(days=1))
    await tls_refused(tls_server.wss, "P3-BAD", pki.client(expired, "p3-expired"))
    await until(lambda: metric(tls_server.http, failures), lambda count: count >= before + 2)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_below_1_2_is_refused(tls_server: TlsServer, pki: Pki) -> None:
    failures = 'csms_tls_handshake_failures_total{reason="protocol_version"}'
    before = await metric(tls_server.http, failures)
    old = pki.client()
    old.minimum_version = ssl.TLSVersion.TLSv1_1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", tls_server.tls_port, ssl=old)
    await until(lambda: metric(tls_server.http, failures), lambda count: count >= before + 1)


@pytest.mark.parametrize("suite, key", [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "ec"), ("ECDHE-ECDSA-AES256-GCM-SHA384", "ec"),
    ("AES128-GCM-SHA256", "rsa"), ("AES256-GCM-SHA384", "rsa"),
])
async def test_the_whitepapers_tls_1_2_suites_are_offered(tls_server: TlsServer, pki: Pki, suite: str,
                                                          key: str) -> None:
    client = pki.client()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers(suite)
    serial = await handshake_serial(tls_server.tls_port, client, suite)
    assert serial == (pki.ecdsa if key == "ec" else pki.rsa).certificate.serial_number


async def handshake_serial(port: int, context: ssl.SSLContext, suite: str | None = None) -> int:
    """One real handshake: the serial number of the certificate the server presented."""
    from cryptography import x509

    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        tls = writer.get_extra_info("ssl_object")
        if suite is not None:
            assert tls.cipher()[0] == suite and tls.version() == "TLSv1.2"
        return int(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number)
    finally:
        writer.close()


# ---- raising and lowering ------------------------------------------------------------------------


async def test_raise_1_to_2_then_the_plain_connection_is_refused(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "RAISE-A", password=PASSWORD)
        async with ChargePointClient(tls_server.plain_ws, "RAISE-A", password=PASSWORD) as cp:
            answer = raising(operator, "RAISE-A", 2)
            call = await cp.next_call()
            assert call[2:] == ["ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}]
            await cp.reply(call, {"status": "Accepted"})
            assert await answer == (200, {"status": "Accepted", "securityProfile": 2})
        assert await refused_status(tls_server.plain_ws, "RAISE-A", password=PASSWORD) == 403
        async with ChargePointClient(tls_server.wss, "RAISE-A", password=PASSWORD, tls=pki.client()) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]
        raised = [event for event in await operator.events("RAISE-A") if event["type"] == "SecurityProfileRaised"]
        assert [event_field(event, "profile") for event in raised] == [2]


async def test_a_refused_raise_leaves_the_profile(tls_server: TlsServer, pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "RAISE-B", password=PASSWORD)
        async with ChargePointClient(tls_server.plain_ws, "RAISE-B", password=PASSWORD) as cp:
            answer = raising(operator, "RAISE-B", 2)
            await cp.reply(await cp.next_call(), {"status": "Rejected"})
            assert await answer == (200, {"status": "Rejected", "securityProfile": 1})
            # What profile 3 needs is checked before anything is sent.
            status, body = await operator.request("POST", "/api/chargepoints/RAISE-B/security-profile",
                                                  {"profile": 3})
            assert status == 409 and "CentralSystemRootCertificate" in body["error"]
            assert cp.incoming_calls.empty()


async def test_a_profile_without_what_it_needs_is_refused(tls_server: TlsServer) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "NEEDS")
        async with ChargePointClient(tls_server.plain_ws, "NEEDS") as cp:
            status, body = await operator.request("POST", "/api/chargepoints/NEEDS/security-profile", {"profile": 2})
            assert status == 409 and "password" in body["error"]
            for bad in ({"profile": 4}, {"profile": "2"}, {}):
                assert (await operator.request("POST", "/api/chargepoints/NEEDS/security-profile", bad))[0] == 422
            assert cp.incoming_calls.empty()
        status, body = await operator.request("PUT", "/api/chargepoints/NEEDS", {"securityProfile": 2})
        assert status == 422 and "password" in body["error"]
        status, body = await operator.request("PUT", "/api/chargepoints/NEEDS", {"securityProfile": True})
        assert status == 422
        assert (await operator.get("/api/chargepoints/NEEDS"))["securityProfile"] == 0


async def test_the_profile_is_never_lowered_through_ocpp_but_an_operator_may(tls_server: TlsServer,
                                                                             pki: Pki) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "LOWER", password=PASSWORD, securityProfile=2)
        async with ChargePointClient(tls_server.wss, "LOWER", password=PASSWORD, tls=pki.client()) as cp:
            status, body = await operator.command("LOWER", "ChangeConfiguration",
                                                  {"key": "SecurityProfile", "value": "1"})
            assert status == 422 and "A00.FR.005" in body["error"]
            status, body = await operator.request("POST", "/api/chargepoints/LOWER/security-profile", {"profile": 1})
            assert status == 409
            assert cp.incoming_calls.empty()
        view = await register(operator, "LOWER", securityProfile=1)
        assert view["securityProfile"] == 1
        lowered = [event for event in await operator.events("LOWER") if event["type"] == "SecurityProfileLowered"]
        assert [(event_field(e, "previous"), event_field(e, "profile")) for e in lowered] == [(2, 1)]
        async with ChargePointClient(tls_server.plain_ws, "LOWER", password=PASSWORD) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_an_authorization_key_that_breaks_the_rules_is_not_sent(tls_server: TlsServer) -> None:
    async with Operator(tls_server.http) as operator:
        await register(operator, "AUTHKEY", password=PASSWORD)
        async with ChargePointClient(tls_server.plain_ws, "AUTHKEY", password=PASSWORD) as cp:
            for bad in ("0123456789abcdef", "ab" * 21, "a" * 33, "not-hexadecimal-but-long-enough!", "nön-ascii"):
                status, body = await operator.command("AUTHKEY", "ChangeConfiguration",
                                                      {"key": "AuthorizationKey", "value": bad})
                assert status == 422 and bad not in body["error"]
            assert cp.incoming_calls.empty()
            good = "0123456789abcdef0123456789ABCDEF"
            sending = asyncio.ensure_future(operator.command("AUTHKEY", "ChangeConfiguration",
                                                             {"key": "AuthorizationKey", "value": good}))
            call = await cp.next_call()
            await cp.reply(call, {"status": "Accepted"})
            assert (await sending)[0] == 200
        async with ChargePointClient(tls_server.plain_ws, "AUTHKEY", password=good) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]
        text = str(await operator.events("AUTHKEY"))
        assert good not in text and PASSWORD not in text


# ---- the server's certificates: TLS on --port, SIGHUP, bad files -------------------------------------


async def test_tls_on_the_port_serves_the_api_and_reloads_on_sighup(store_url: str, server_factory: Any,
                                                                   tmp_path: Path, pki: Pki) -> None:
    first = issue(pki.server_ca, "localhost", kind="ec", server=True, dns_names=("localhost",))
    certificate, key = first.write(tmp_path, "live")
    server = server_factory.start(store_url, "--tls-cert", certificate, "--tls-key", key)
    https = f"https://127.0.0.1:{server.port}"
    async with Operator(https, tls=pki.client()) as operator:
        await register(operator, "HUP")
        assert await handshake_serial(server.port, pki.client()) == first.certificate.serial_number
        async with ChargePointClient(f"wss://127.0.0.1:{server.port}", "HUP", tls=pki.client()) as cp:
            second = issue(pki.server_ca, "localhost", kind="ec", server=True, dns_names=("localhost",))
            second.write(tmp_path, "live")
            os.kill(server.process.pid, signal.SIGHUP)
            serial = second.certificate.serial_number
            await until(lambda: handshake_serial(server.port, pki.client()), lambda seen: seen == serial)
            assert (await cp.call("Heartbeat", {}))["currentTime"]  # the open connection lives on
            # Bad files at reload: logged, the certificates in use stay.
            Path(key).write_text("not a key")
            os.kill(server.process.pid, signal.SIGHUP)
            await until(lambda: metric(https, 'csms_tls_certificate_reloads_total{result="failed"}', pki.client()),
                        lambda count: count == 1)
            assert await handshake_serial(server.port, pki.client()) == serial
            assert (await cp.call("Heartbeat", {}))["currentTime"]
        assert (await operator.get("/api/chargepoints/HUP"))["id"] == "HUP"
    assert any("TLS certificates not reloaded" in line for line in server.output)


@pytest.mark.parametrize("problem", ["missing", "mismatched", "two-ecdsa", "encrypted"])
def test_bad_certificate_files_stop_serve_with_exit_code_2(tmp_path: Path, pki: Pki, problem: str) -> None:
    from cryptography.hazmat.primitives import serialization

    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(pki.ecdsa.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.BestAvailableEncryption(b"passphrase")))
    options = {
        "missing": ["--tls-cert", str(tmp_path / "none.crt"), "--tls-key", str(tmp_path / "none.key")],
        "mismatched": ["--tls-cert", pki.rsa_files[0], "--tls-key", pki.ecdsa_files[1]],
        "two-ecdsa": ["--tls-cert", pki.ecdsa_files[0], "--tls-key", pki.ecdsa_files[1],
                      "--tls-cert", pki.ecdsa_files[0], "--tls-key", pki.ecdsa_files[1]],
        "encrypted": ["--tls-cert", pki.ecdsa_files[0], "--tls-key", str(encrypted)],
    }[problem]
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--store", "memory:", "--port", str(free_port()),
                             *options], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("csms: ") and "Traceback" not in result.stderr
    assert "passphrase" not in result.stderr


async def until(probe: Any, accept: Any) -> Any:
    """Polls ``probe()`` until ``accept`` holds for its value, within DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = await probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {DEADLINE} s"
        await asyncio.sleep(0.05)


# ---- raising 1 -> 2 -> 3 with the built-in CA ----------------------------------------------------------


async def test_raise_1_to_2_to_3_with_a_certificate_this_central_system_signed(
        store_url: str, server_factory: Any, tmp_path: Path, pki: Pki) -> None:
    from tests.certificates import signing_request

    made = subprocess.run([sys.executable, "-m", "app", "ca", "init", "--cpo-name", CPO, "--data-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    tls_port = free_port()
    server = server_factory.start(store_url, "--call-timeout", "2", "--data-dir", str(tmp_path), "--cpo-name", CPO,
                                  "--tls-cert", pki.ecdsa_files[0], "--tls-key", pki.ecdsa_files[1],
                                  "--tls-port", str(tls_port))
    plain, wss = f"ws://127.0.0.1:{server.port}", f"wss://127.0.0.1:{tls_port}"
    async with Operator(server.http) as operator:
        await register(operator, "RAISE-3", password=PASSWORD)
        async with ChargePointClient(plain, "RAISE-3", password=PASSWORD) as cp:
            answer = raising(operator, "RAISE-3", 2)
            await cp.reply(await cp.next_call(), {"status": "Accepted"})
            assert (await answer)[1]["securityProfile"] == 2
        async with ChargePointClient(wss, "RAISE-3", password=PASSWORD, tls=pki.client()) as cp:
            root = (tmp_path / "ca" / "ca.crt").read_text()
            installing = asyncio.ensure_future(operator.command(
                "RAISE-3", "InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                                                  "certificate": root}))
            await cp.reply(await cp.next_call(), {"status": "Accepted"})
            assert (await installing)[0] == 200
            csr, key = signing_request("RAISE-3", CPO)
            assert (await cp.call("SignCertificate", {"csr": csr}))["status"] == "Accepted"
            signed = await cp.next_call()
            assert signed[2] == "CertificateSigned"
            await cp.reply(signed, {"status": "Accepted"})
            # The certificate's acceptance is recorded beside the answer: the raise waits for it.
            answer = asyncio.ensure_future(until(
                lambda: operator.request("POST", "/api/chargepoints/RAISE-3/security-profile", {"profile": 3}),
                lambda reply: reply[0] != 409))
            call = await cp.next_call()
            assert call[2:] == ["ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}]
            await cp.reply(call, {"status": "Accepted"})
            assert await answer == (200, {"status": "Accepted", "securityProfile": 3})
        from cryptography.hazmat.primitives import serialization

        (tmp_path / "cp.crt").write_text(signed[3]["certificateChain"])
        (tmp_path / "cp.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
        with_certificate = pki.client()
        with_certificate.load_cert_chain(str(tmp_path / "cp.crt"), str(tmp_path / "cp.key"))
        async with ChargePointClient(wss, "RAISE-3", tls=with_certificate) as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]
        assert await refused_status(wss, "RAISE-3", tls=pki.client(), password=PASSWORD) == 403
