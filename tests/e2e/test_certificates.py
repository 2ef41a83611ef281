"""Charge point certificates end to end: the built-in CA, SignCertificate -> CertificateSigned, manual
approval, refused CSRs, installed certificates, renewal, on a real `csms serve` and both stores.

The simulated charge point checks what it is sent as a charge point would:
the leaf's signature verifies with the CA's public key, its CN and O are
its own, it is valid now, and the chain is the leaf then the CA's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.certificates import Issued, certificate_authority, new_key, signing_request
from tests.conftest import ROOT, Server
from tests.e2e.steps import assert_nothing_was_sent, connected, exchange
from tests.ocpp_client import ChargePointClient, Operator, fresh_store

CPO = "Acme CPO"
DEADLINE = 10.0


def csms(*args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """`csms ...` run as an operator runs it: a process of its own."""
    preexec = (lambda: os.umask(umask)) if umask is not None else None  # type: ignore[misc]
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, preexec_fn=preexec)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory in which `csms ca init --cpo-name` made the built-in CA."""
    folder = tmp_path_factory.mktemp("data")
    made = csms("ca", "init", "--cpo-name", CPO, "--data-dir", str(folder))
    assert made.returncode == 0, made.stderr
    return folder


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ca_dir: Path) -> Iterator[Server]:
    """One server per store kind using the built-in CA, auto approval, the CPO name set."""
    with fresh_store(request.param, tmp_path_factory.mktemp("store")) as store:
        running = Server(store, "--call-timeout", "2", "--data-dir", str(ca_dir), "--cpo-name", CPO)
        try:
            yield running.start()
        finally:
            running.stop()
        running.check_output()


@pytest.fixture
async def operator(server: Server) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


def built_in_ca(ca_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ca_dir / "ca" / "ca.crt").read_bytes())


async def eventually(probe: Callable[[], Awaitable[Any]], deadline: float = DEADLINE) -> Any:
    """Probes an observable condition until it holds, failing after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while not (value := await probe()):
        assert loop.time() < give_up, "the condition never held"
        await asyncio.sleep(0.05)
    return value


def checked_chain(chain_pem: str, charge_point_id: str, organization: str | None, csr_key: Any,
                  ca_chain: list[x509.Certificate]) -> x509.Certificate:
    """What a charge point checks of the chain it is sent; returns the leaf."""
    leaf, *rest = x509.load_pem_x509_certificates(chain_pem.encode())
    assert rest == ca_chain  # the CA (and its issuers) after the leaf
    leaf.verify_directly_issued_by(ca_chain[0])  # its signature verifies with the CA's public key
    for lower, upper in zip(rest, rest[1:], strict=False):
        lower.verify_directly_issued_by(upper)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == charge_point_id
    organizations = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert organizations == ([organization] if organization else [])
    now = dt.datetime.now(dt.UTC)
    assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc >= dt.timedelta(days=364)
    assert ExtendedKeyUsageOID.CLIENT_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.public_key() == csr_key.public_key()  # its own key, never one of ours
    return leaf


async def sign_certificate(cp: ChargePointClient, csr: str) -> dict[str, Any]:
    return await cp.call("SignCertificate", {"csr": csr})


async def events_of(operator: Operator, charge_point_id: str, *types: str) -> list[dict[str, Any]]:
    return [event for event in await operator.events(charge_point_id) if event["type"] in types]


async def requests_of(operator: Operator, charge_point_id: str, status: str | None = None) -> list[dict[str, Any]]:
    query = f"?chargePointId={charge_point_id}" + (f"&status={status}" if status else "")
    return (await operator.get(f"/api/certificate-requests{query}"))["certificateRequests"]


# ---- csms ca init ------------------------------------------------------------------------------


def test_ca_init_makes_a_ca_whose_key_only_its_owner_reads_and_never_overwrites_it(tmp_path):
    made = csms("ca", "init", "--cpo-name", CPO, "--data-dir", str(tmp_path), umask=0)  # even with umask 0
    assert made.returncode == 0, made.stderr
    key_file, cert_file = tmp_path / "ca" / "ca.key", tmp_path / "ca" / "ca.crt"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert certificate.public_key() == key.public_key()
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    certificate.verify_directly_issued_by(certificate)  # self-signed
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == CPO
    before = (key_file.read_bytes(), cert_file.read_bytes())

    again = csms("ca", "init", "--data-dir", str(tmp_path))

    assert again.returncode == 2 and "exists already" in again.stderr
    assert (key_file.read_bytes(), cert_file.read_bytes()) == before


def test_serve_refuses_a_ca_key_that_is_not_the_certificates(tmp_path):
    one, other = certificate_authority("One"), certificate_authority("Other")
    cert_file, _ = one.write(tmp_path, "one")
    _, key_file = other.write(tmp_path, "other")
    refused = csms("serve", "--store", "memory:", "--ca-cert", cert_file, "--ca-key", key_file)
    assert refused.returncode == 2 and "is not the key of" in refused.stderr
    alone = csms("serve", "--store", "memory:", "--ca-cert", cert_file)
    assert alone.returncode == 2 and "--ca-cert and --ca-key go together" in alone.stderr


# ---- SignCertificate -> CertificateSigned --------------------------------------------------------


async def test_a_csr_is_answered_then_signed_and_the_accepted_certificate_is_the_charge_points(
        server, operator, ca_dir):
    csr, key = signing_request("CERT-ROUND", CPO)
    async with connected(server, operator, "CERT-ROUND") as cp:
        assert await sign_certificate(cp, csr) == {"status": "Accepted"}
        call = await cp.next_call()
        assert call[2] == "CertificateSigned"
        # The charge point had its SignCertificate.conf before the CertificateSigned.req.
        kinds = [(frame[0], frame[2] if frame[0] == 2 else None) for frame in cp.received]
        assert kinds[-2:] == [(3, None), (2, "CertificateSigned")]
        leaf = checked_chain(call[3]["certificateChain"], "CERT-ROUND", CPO, key, [built_in_ca(ca_dir)])
        await cp.reply(call, {"status": "Accepted"})

        async def certificate() -> Any:
            return (await operator.get("/api/chargepoints/CERT-ROUND"))["chargePointCertificate"]

        held = await eventually(certificate)

    serial = format(leaf.serial_number, "x")
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
    assert (held["serialNumber"], held["fingerprint"]) == (serial, fingerprint)
    assert held["subject"] == f"O={CPO},CN=CERT-ROUND"
    history = await operator.events("CERT-ROUND")
    names = [event["type"] for event in history]
    issued_at = names.index("CertificateIssued")
    assert names[issued_at - 1] == "CertificateSigningRequested"
    assert names[issued_at + 1:issued_at + 4] == ["CallSent", "CallAnswered", "ChargePointCertificateAccepted"]
    requested, issued = history[issued_at - 1]["data"], history[issued_at]["data"]
    assert (requested["verdict"], requested["keyType"], requested["reason"]) == ("Accepted", "EC secp256r1", None)
    assert (issued["serialNumber"], issued["fingerprint"], issued["requestId"]) == (
        serial, fingerprint, requested["requestId"])
    assert "PRIVATE KEY" not in json.dumps(history)
    [listed] = await requests_of(operator, "CERT-ROUND")
    assert (listed["status"], listed["chargePointAnswer"], listed["serialNumber"]) == ("accepted", "Accepted", serial)

    # An auditor's replay, straight from the store, shows who had which certificate.
    replay = csms("replay", "CERT-ROUND", "--store", server.store)
    assert replay.returncode == 0, replay.stderr
    lines = replay.stdout.splitlines()
    assert any('"type":"CertificateIssued"' in line and serial in line for line in lines)
    assert '"chargePointCertificate"' in replay.stdout and fingerprint in replay.stdout.split('"state"')[1]


@pytest.mark.parametrize(("case", "common_name", "organization", "kind", "bits", "reason"), [
    ("wrong-cn", "SOMEONE-ELSE", CPO, "ec", 2048, "is not the charge point's certificate name"),
    ("wrong-o", None, "Other CPO", "ec", 2048, "is not the CPO name"),
    ("rsa-1024", None, CPO, "rsa", 1024, "RSA key of 1024 bits"),
    ("tampered", None, CPO, "rsa", 2048, "signature does not verify"),
    ("not-pem", None, CPO, "ec", 2048, "not a readable CSR"),
])
async def test_a_csr_that_breaks_a_rule_is_rejected_recorded_and_never_signed(
        server, operator, case, common_name, organization, kind, bits, reason):
    charge_point_id = f"CERT-BAD-{case}".upper()
    csr, _ = signing_request(common_name or charge_point_id, organization, kind, bits)
    if case == "tampered":
        csr = tampered(csr)
    if case == "not-pem":
        csr = "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n"
    async with connected(server, operator, charge_point_id) as cp:
        assert await sign_certificate(cp, csr) == {"status": "Rejected"}
        await assert_nothing_was_sent(cp, operator)  # no CertificateSigned came first

    [requested] = await events_of(operator, charge_point_id, "CertificateSigningRequested")
    assert requested["data"]["verdict"] == "Rejected" and reason in requested["data"]["reason"]
    assert await events_of(operator, charge_point_id, "CertificateIssued") == []
    [listed] = await requests_of(operator, charge_point_id)
    assert listed["status"] == "rejected" and reason in listed["reason"]


def tampered(csr_pem: str) -> str:
    """The CSR with one bit of its signature flipped: it still parses, but no longer verifies."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-10] ^= 0x01
    tampered_csr = x509.load_der_x509_csr(bytes(der))
    assert not tampered_csr.is_signature_valid
    return tampered_csr.public_bytes(serialization.Encoding.PEM).decode()


async def test_renewal_through_extended_trigger_message_gets_a_new_certificate(server, operator, ca_dir):
    async with connected(server, operator, "CERT-RENEW") as cp:
        serials = []
        for _ in range(2):
            _, status, body = await exchange(
                cp, operator, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"},
                {"status": "Accepted"})
            assert (status, body) == (200, {"status": "Accepted"})
            csr, key = signing_request("CERT-RENEW", CPO)  # a new key each time, as the Whitepaper asks
            assert await sign_certificate(cp, csr) == {"status": "Accepted"}
            call = await cp.next_call()
            leaf = checked_chain(call[3]["certificateChain"], "CERT-RENEW", CPO, key, [built_in_ca(ca_dir)])
            await cp.reply(call, {"status": "Accepted"})
            serials.append(format(leaf.serial_number, "x"))

            async def current(serial: str = serials[-1]) -> bool:
                held = (await operator.get("/api/chargepoints/CERT-RENEW"))["chargePointCertificate"]
                return held is not None and held["serialNumber"] == serial

            await eventually(current)
    assert serials[0] != serials[1]
    accepted = await events_of(operator, "CERT-RENEW", "ChargePointCertificateAccepted")
    assert [event["data"]["serialNumber"] for event in accepted] == serials


async def test_a_certificate_the_charge_point_rejects_is_not_its_certificate(server, operator):
    csr, _ = signing_request("CERT-NOPE", CPO)
    async with connected(server, operator, "CERT-NOPE") as cp:
        await sign_certificate(cp, csr)
        call = await cp.next_call()
        await cp.reply(call, {"status": "Rejected"})

        async def refused() -> Any:
            return [r for r in await requests_of(operator, "CERT-NOPE") if r["status"] == "refused"]

        [listed] = await eventually(refused)
    assert listed["chargePointAnswer"] == "Rejected"
    assert (await operator.get("/api/chargepoints/CERT-NOPE"))["chargePointCertificate"] is None
    assert len(await events_of(operator, "CERT-NOPE", "ChargePointCertificateRefused")) == 1


# ---- installed certificates ---------------------------------------------------------------------


def hash_data_of(certificate: x509.Certificate) -> dict[str, str]:
    """CertificateHashData of a self-signed certificate, worked out here independently of the server."""
    key = certificate.public_key()
    bits = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint) \
        if isinstance(key, ec.EllipticCurvePublicKey) else \
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)  # type: ignore[union-attr]
    return {"hashAlgorithm": "SHA256", "issuerNameHash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": hashlib.sha256(bits).hexdigest(), "serialNumber": format(certificate.serial_number, "x")}


async def test_installed_reported_and_deleted_certificates_are_history_and_shown(server, operator, ca_dir):
    manufacturer = certificate_authority("Maker Root", kind="rsa")
    async with connected(server, operator, "CERT-STORE") as cp:
        pending = asyncio.ensure_future(operator.request("POST", "/api/chargepoints/CERT-STORE/install-csms-root"))
        call = await cp.next_call()
        assert call[2] == "InstallCertificate" and call[3]["certificateType"] == "CentralSystemRootCertificate"
        assert x509.load_pem_x509_certificate(call[3]["certificate"].encode()) == built_in_ca(ca_dir)
        await cp.reply(call, {"status": "Accepted"})
        assert await pending == (200, {"status": "Accepted"})
        installed = await operator.get("/api/chargepoints/CERT-STORE")
        _, status, _ = await exchange(cp, operator, "InstallCertificate", {
            "certificateType": "ManufacturerRootCertificate", "certificate": manufacturer.pem}, {"status": "Failed"})
        assert status == 200
        reported = hash_data_of(manufacturer.certificate)
        await exchange(cp, operator, "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"},
                       {"status": "Accepted", "certificateHashData": [reported]})
        after_report = await operator.get("/api/chargepoints/CERT-STORE")
        await exchange(cp, operator, "DeleteCertificate", {"certificateHashData": reported}, {"status": "Accepted"})
        after_delete = await operator.get("/api/chargepoints/CERT-STORE")

    root = hash_data_of(built_in_ca(ca_dir))
    assert installed["installedCertificates"] == {"CentralSystemRootCertificate": [root]}
    assert after_report["installedCertificates"] == {"CentralSystemRootCertificate": [root],
                                                     "ManufacturerRootCertificate": [reported]}
    assert after_delete["installedCertificates"] == {"CentralSystemRootCertificate": [root],
                                                     "ManufacturerRootCertificate": []}
    history = await events_of(operator, "CERT-STORE", "CertificateInstalled", "CertificateInstallRefused",
                              "InstalledCertificatesReported", "CertificateDeleted")
    assert [event["type"] for event in history] == [
        "CertificateInstalled", "CertificateInstallRefused", "InstalledCertificatesReported", "CertificateDeleted"]
    assert history[0]["data"]["hashData"] == root
    assert history[0]["data"]["fingerprint"] == built_in_ca(ca_dir).fingerprint(hashes.SHA256()).hex()
    assert history[1]["data"]["status"] == "Failed"


@pytest.mark.parametrize(("action", "payload"), [
    ("InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                            "certificate": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"}),
    ("InstallCertificate", {"certificateType": "CentralSystemRootCertificate", "certificate": "hello"}),
    ("CertificateSigned", {"certificateChain": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
])
async def test_a_certificate_that_does_not_parse_is_refused_before_sending(server, operator, action, payload):
    async with connected(server, operator, "CERT-JUNK") as cp:
        status, body = await operator.command("CERT-JUNK", action, payload)
        await assert_nothing_was_sent(cp, operator)
    assert status == 422 and "PEM" in body["error"]


# ---- manual approval, a given sub-CA, no CA at all ------------------------------------------------


def sub_ca(root: Issued) -> Issued:
    """An intermediate CA signed by `root`."""
    key = new_key("ec")
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Acme Sub CA")]))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root.key, hashes.SHA256())
    )
    return Issued(certificate, key)


async def test_manual_approval_signs_with_the_given_sub_ca_only_when_approved(store_url, server_factory, tmp_path):
    root = certificate_authority("Acme Root")
    intermediate = sub_ca(root)
    (tmp_path / "sub.crt").write_text(intermediate.pem + root.pem)  # the sub-CA, then its issuer
    _, key_file = intermediate.write(tmp_path, "sub-key")
    running = server_factory.start(store_url, "--call-timeout", "2", "--ca-cert", str(tmp_path / "sub.crt"),
                                   "--ca-key", key_file, "--csr-approval", "manual", "--data-dir", str(tmp_path))
    async with Operator(running.http) as operator:
        async with connected(running, operator, "CERT-MANUAL") as cp:
            first, key = signing_request("CERT-MANUAL", "Any O")  # no --cpo-name: any O
            second, _ = signing_request("CERT-MANUAL")
            assert await sign_certificate(cp, first) == {"status": "Accepted"}
            assert await sign_certificate(cp, second) == {"status": "Accepted"}
            await assert_nothing_was_sent(cp, operator)  # both wait for an operator
            waiting = await requests_of(operator, "CERT-MANUAL", "pending")
            assert [(r["status"], r["subject"]) for r in waiting] == [
                ("pending", "O=Any O,CN=CERT-MANUAL"), ("pending", "CN=CERT-MANUAL")]
            assert all(r["received"] and r["chargePointId"] == "CERT-MANUAL" for r in waiting)
            first_id, second_id = waiting[0]["id"], waiting[1]["id"]

            approval = asyncio.ensure_future(operator.request("POST", f"/api/certificate-requests/{first_id}/approve"))
            call = await cp.next_call()
            assert call[2] == "CertificateSigned"
            leaf = checked_chain(call[3]["certificateChain"], "CERT-MANUAL", "Any O", key,
                                 [intermediate.certificate, root.certificate])
            await cp.reply(call, {"status": "Accepted"})
            status, approved = await approval
            again = await operator.request("POST", f"/api/certificate-requests/{first_id}/approve")
            rejected = await operator.request("POST", f"/api/certificate-requests/{second_id}/reject",
                                              {"reason": "not ours"})
            rejected_again = await operator.request("POST", f"/api/certificate-requests/{second_id}/reject")
            approved_after = await operator.request("POST", f"/api/certificate-requests/{second_id}/approve")
            unknown = await operator.request("POST", "/api/certificate-requests/no-such-request/approve")
            await assert_nothing_was_sent(cp, operator)
            pending_after = await requests_of(operator, "CERT-MANUAL", "pending")
            everything = await requests_of(operator, "CERT-MANUAL")

    assert status == 200, approved
    assert approved["chargePointAnswer"] == {"status": "Accepted"}
    assert approved["certificate"]["serialNumber"] == format(leaf.serial_number, "x")
    assert approved["certificate"]["issuer"] == "CN=Acme Sub CA"
    assert again[0] == 409 and rejected_again[0] == 409 and approved_after[0] == 409
    assert rejected[0] == 200 and rejected[1]["status"] == "rejected"
    assert unknown[0] == 404
    assert pending_after == []
    assert [(r["id"], r["status"]) for r in everything] == [(first_id, "accepted"), (second_id, "rejected")]
    assert everything[1]["reason"] == "not ours"


async def test_without_a_ca_every_csr_is_rejected_with_the_reason(store_url, server_factory, tmp_path):
    running = server_factory.start(store_url, "--call-timeout", "2", "--data-dir", str(tmp_path))
    async with Operator(running.http) as operator:
        async with connected(running, operator, "CERT-NO-CA") as cp:
            csr, _ = signing_request("CERT-NO-CA")
            assert await sign_certificate(cp, csr) == {"status": "Rejected"}
            status, body = await operator.request("POST", "/api/chargepoints/CERT-NO-CA/install-csms-root")
            await assert_nothing_was_sent(cp, operator)
        [requested] = await events_of(operator, "CERT-NO-CA", "CertificateSigningRequested")
    assert "no certificate authority" in requested["data"]["reason"]
    assert requested["data"]["subject"] == "CN=CERT-NO-CA"
    assert status == 409 and "no certificate authority" in body["error"]
