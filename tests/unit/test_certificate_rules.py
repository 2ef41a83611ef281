"""Certificate management in the domain: the CSR rules, the request's life, and what the answers mean.

The CSR is read by a stand-in (what adapters/security/csr.py would report),
so nothing here parses X.509: the domain decides from those facts alone.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from domain.certificate_facts import (
    NO_CERTIFICATE_AUTHORITY,
    Certificate,
    CertificateSigning,
    SigningRequest,
    csr_refusal,
    same_hash_data,
)
from domain.certificates import (
    RequestNotPending,
    answer_sign_certificate,
    record_install_requested,
    record_issued,
    reject_request,
)
from domain.chargepoint import ChargePoint
from tests.stories import facts_at, registered, replayed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GOOD = SigningRequest(signature_valid=True, subject="CN=CP-1,O=Acme", common_name="CP-1", organization="Acme",
                      key_algorithm="EC", key_size=256, curve="secp256r1")
ROOT_HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "1f"}
ISSUED = Certificate(serial_number="1234abcd", fingerprint="f" * 64, subject="CN=CP-1,O=Acme",
                     issuer="CN=Acme CA,O=Acme", not_before=NOW, not_after=NOW + timedelta(days=365))
ROOT = dataclasses.replace(ISSUED, serial_number="1f", subject="CN=Acme Root", hash_data=ROOT_HASH)


# ---- the rules a CSR meets ----------------------------------------------------------------


def test_a_good_csr_is_not_refused():
    assert csr_refusal(GOOD, "CP-1", "Acme") is None
    assert csr_refusal(dataclasses.replace(GOOD, organization=None), "CP-1", None) is None  # no CPO name: any O


@pytest.mark.parametrize(("csr", "expected"), [
    (SigningRequest(unreadable="bad base64"), "not a readable CSR"),
    (dataclasses.replace(GOOD, signature_valid=False), "signature does not verify"),
    (dataclasses.replace(GOOD, key_algorithm="RSA", key_size=1024, curve=None), "RSA key of 1024 bits"),
    (dataclasses.replace(GOOD, curve="secp224r1"), "EC key on secp224r1"),
    (dataclasses.replace(GOOD, key_algorithm="DSA", curve=None), "DSA key"),
    (dataclasses.replace(GOOD, common_name="CP-2"), "CN 'CP-2'"),
    (dataclasses.replace(GOOD, organization="Other"), "O 'Other'"),
])
def test_a_csr_that_breaks_a_rule_is_refused_with_the_reason(csr, expected):
    assert expected in (csr_refusal(csr, "CP-1", "Acme") or "")


def test_rsa_keys_of_2048_bits_and_p384_keys_pass():
    assert csr_refusal(dataclasses.replace(GOOD, key_algorithm="RSA", key_size=2048, curve=None), "CP-1", None) is None
    assert csr_refusal(dataclasses.replace(GOOD, curve="secp384r1"), "CP-1", None) is None


def test_hash_data_name_the_same_certificate_whatever_the_case_and_leading_zeroes():
    assert same_hash_data(ROOT_HASH, {**ROOT_HASH, "issuerNameHash": "AA", "serialNumber": "001F"})
    assert not same_hash_data(ROOT_HASH, {**ROOT_HASH, "serialNumber": "20"})


# ---- a request's life -------------------------------------------------------------------------


def signing(csr: SigningRequest = GOOD, can_sign: bool = True, manual: bool = False) -> CertificateSigning:
    return CertificateSigning(read_csr=lambda pem: csr, can_sign=can_sign, cpo_name="Acme", manual_approval=manual)


def asked(cp: ChargePoint, how: CertificateSigning | None) -> dict:
    facts = dataclasses.replace(facts_at(NOW), certificate_signing=how)
    return answer_sign_certificate(cp, "m1", {"csr": "PEM"}, facts)


def test_an_accepted_csr_waits_under_its_request_id_until_issued():
    cp = registered("CP-1")
    reply = asked(cp, signing())  # when
    [requested] = [e for e in cp.collect_events() if type(e).__name__ == "CertificateSigningRequested"]
    assert reply == {"status": "Accepted"}
    assert (requested.verdict, requested.reason, requested.approval, requested.key_type) == (
        "Accepted", None, "auto", "EC secp256r1")
    assert cp.certificate_requests[requested.request_id]["csr"] == "PEM"

    record_issued(cp, requested.request_id, ISSUED, "CHAIN", NOW)  # then signed once
    assert cp.certificate_requests == {} and cp.certificates_sent["CHAIN"]["serialNumber"] == "1234abcd"
    with pytest.raises(RequestNotPending):
        record_issued(cp, requested.request_id, ISSUED, "CHAIN", NOW)
    with pytest.raises(RequestNotPending):
        reject_request(cp, requested.request_id, "no", NOW)


def test_without_a_ca_or_with_a_bad_csr_the_answer_is_rejected_and_nothing_waits():
    for how, reason in [(None, NO_CERTIFICATE_AUTHORITY), (signing(can_sign=False), NO_CERTIFICATE_AUTHORITY),
                        (signing(dataclasses.replace(GOOD, common_name="X")), "CN 'X'")]:
        cp = registered("CP-1")
        assert asked(cp, how) == {"status": "Rejected"}
        [requested] = cp.collect_events()[1:]
        assert requested.verdict == "Rejected" and reason in requested.reason and requested.approval is None
        assert cp.certificate_requests == {}


def test_request_ids_differ_per_request_and_replay_the_same():
    cp = registered("CP-1")
    asked(cp, signing(manual=True))
    asked(cp, signing(manual=True))
    events = cp.collect_events()
    ids = [e.request_id for e in events[1:]]
    assert len(set(ids)) == 2 and all(e.approval == "manual" for e in events[1:])
    assert replayed(events).certificate_requests == cp.certificate_requests


def test_an_operator_rejection_ends_the_wait():
    cp = registered("CP-1")
    asked(cp, signing(manual=True))
    [request_id] = cp.certificate_requests
    reject_request(cp, request_id, "unknown hardware", NOW)
    assert cp.certificate_requests == {}
    with pytest.raises(RequestNotPending):
        record_issued(cp, request_id, ISSUED, "CHAIN", NOW)


# ---- what the answers mean ---------------------------------------------------------------------


def answered(cp: ChargePoint, action: str, request: dict, reply: dict) -> list[str]:
    cp.collect_events()
    cp.record_call_answer("c1", action, request, reply, NOW)
    return [type(e).__name__ for e in cp.collect_events()]


def test_the_certificate_the_charge_point_accepts_becomes_its_certificate():
    cp = registered("CP-1")
    asked(cp, signing())
    [request_id] = cp.certificate_requests
    record_issued(cp, request_id, ISSUED, "CHAIN", NOW)
    names = answered(cp, "CertificateSigned", {"certificateChain": "CHAIN"}, {"status": "Accepted"})
    assert names == ["CallAnswered", "ChargePointCertificateAccepted"]
    assert cp.charge_point_certificate is not None
    assert cp.charge_point_certificate["serialNumber"] == "1234abcd" and cp.certificates_sent == {}


def test_a_refused_certificate_changes_nothing_and_a_foreign_chain_is_only_an_exchange():
    cp = registered("CP-1")
    asked(cp, signing())
    [request_id] = cp.certificate_requests
    record_issued(cp, request_id, ISSUED, "CHAIN", NOW)
    assert answered(cp, "CertificateSigned", {"certificateChain": "CHAIN"}, {"status": "Rejected"}) == [
        "CallAnswered", "ChargePointCertificateRefused"]
    assert answered(cp, "CertificateSigned", {"certificateChain": "OTHER"}, {"status": "Accepted"}) == [
        "CallAnswered"]
    assert cp.charge_point_certificate is None


def test_installed_reported_and_deleted_certificates_keep_the_installed_list():
    cp = registered("CP-1")
    request = {"certificateType": "CentralSystemRootCertificate", "certificate": "ROOT-PEM"}
    record_install_requested(cp, request, ROOT, NOW)
    assert answered(cp, "InstallCertificate", request, {"status": "Accepted"}) == [
        "CallAnswered", "CertificateInstalled"]
    assert cp.installed_certificates == {"CentralSystemRootCertificate": [ROOT_HASH]}

    other = {**ROOT_HASH, "serialNumber": "77"}
    answered(cp, "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"},
             {"status": "Accepted", "certificateHashData": [other]})
    answered(cp, "DeleteCertificate", {"certificateHashData": {**ROOT_HASH, "serialNumber": "01F"}},
             {"status": "Accepted"})
    assert cp.installed_certificates == {"CentralSystemRootCertificate": [],
                                         "ManufacturerRootCertificate": [other]}
    answered(cp, "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"},
             {"status": "NotFound"})
    assert cp.installed_certificates["ManufacturerRootCertificate"] == []


def test_a_refused_install_or_delete_installs_or_deletes_nothing_and_replays_the_same():
    cp = registered("CP-1")
    request = {"certificateType": "CentralSystemRootCertificate", "certificate": "ROOT-PEM"}
    record_install_requested(cp, request, ROOT, NOW)
    all_events = cp.collect_events()
    cp.record_call_answer("c1", "InstallCertificate", request, {"status": "Rejected"}, NOW)
    cp.record_call_answer("c2", "DeleteCertificate", {"certificateHashData": ROOT_HASH}, {"status": "NotFound"}, NOW)
    all_events += cp.collect_events()
    assert [type(e).__name__ for e in all_events[1:]] == [
        "CertificateInstallRequested", "CallAnswered", "CertificateInstallRefused", "CallAnswered"]
    assert cp.installed_certificates == {} and cp.certificates_sent == {}
    assert vars(replayed(all_events)) == vars(cp)


def test_certificates_never_answered_are_not_kept_forever():
    cp = registered("CP-1")
    for number in range(20):
        record_install_requested(cp, {"certificateType": "CentralSystemRootCertificate",
                                      "certificate": f"PEM-{number}"}, ROOT, NOW)
    assert list(cp.certificates_sent) == [f"PEM-{number}" for number in range(12, 20)]
