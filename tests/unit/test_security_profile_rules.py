"""Security profiles and admission, on the domain alone (domain/security_profile.py, domain/admission.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.admission import (
    INVALID_CERTIFICATE,
    PROFILE_NOT_MET,
    ClientCertificate,
    Transport,
    certificate_refusal,
    needs_password,
    requirements_of,
    transport_refusal,
)
from domain.chargepoint import ChargePoint
from domain.security_profile import (
    ProfileRefused,
    certificate_name_of,
    change_configuration_refusal,
    profile_of,
    raise_refusal,
    set_by_operator,
    set_certificate_name,
)
from tests.stories import registered, replayed

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def with_password(charge_point_id: str = "CP-1") -> ChargePoint:
    cp = registered(charge_point_id)
    cp.record_credentials_changed(has_password=True, reason="registered with a password")
    return cp


def certificate(common_name: str | None = "CP-1", organization: str | None = "CPO", fingerprint: str = "ab" * 32,
                not_after: datetime = NOW + timedelta(days=1)) -> ClientCertificate:
    return ClientCertificate(common_name, organization, fingerprint, "1F", NOW - timedelta(days=1), not_after)


# ---- the profile ----------------------------------------------------------------------------------


def test_unset_the_profile_is_1_with_a_password_else_0() -> None:
    assert profile_of(registered()) == 0
    assert profile_of(with_password()) == 1
    assert certificate_name_of(registered("CP-9")) == "CP-9"


def test_lowering_through_the_api_is_recorded_as_lowered_from_what_to_what() -> None:
    cp = with_password()  # given
    set_by_operator(cp, 2, tls_served=True, now=NOW)

    set_by_operator(cp, 1, tls_served=True, now=NOW)  # when

    *_, raised, lowered = cp.collect_events()  # then
    assert type(raised).__name__ == "SecurityProfileSet" and (raised.previous, raised.profile) == (1, 2)
    assert type(lowered).__name__ == "SecurityProfileLowered" and (lowered.previous, lowered.profile) == (2, 1)
    assert profile_of(cp) == 1


def test_the_profile_replays_from_its_events() -> None:
    cp = with_password()  # given
    set_by_operator(cp, 2, tls_served=True, now=NOW)
    set_certificate_name(cp, "SERIAL-7", NOW)

    again = replayed(cp.collect_events())  # when

    assert (profile_of(again), certificate_name_of(again)) == (2, "SERIAL-7")  # then


@pytest.mark.parametrize("profile, password, tls, status", [
    (4, True, True, 422), (1, False, True, 422), (2, False, True, 422), (0, True, True, 422), (2, True, False, 422),
    (3, False, False, 422),
])
def test_a_profile_the_charge_point_cannot_have_is_refused(profile: int, password: bool, tls: bool,
                                                           status: int) -> None:
    cp = with_password() if password else registered()
    with pytest.raises(ProfileRefused) as refused:
        set_by_operator(cp, profile, tls_served=tls, now=NOW)
    assert refused.value.status == status
    assert [type(event).__name__ for event in cp.collect_events()][-1] in ("Registered", "CredentialsChanged")


def test_a_raise_needs_what_the_profile_needs() -> None:
    cp = with_password()
    assert raise_refusal(cp, 2, tls_served=True) is None
    assert "TLS" in raise_refusal(cp, 2, tls_served=False).reason  # type: ignore[union-attr]
    assert "CentralSystemRootCertificate" in raise_refusal(cp, 3, tls_served=True).reason  # type: ignore[union-attr]
    cp.installed_certificates = {"CentralSystemRootCertificate": [{"serialNumber": "1"}]}
    assert "signed" in raise_refusal(cp, 3, tls_served=True).reason  # type: ignore[union-attr]
    cp.charge_point_certificate = {"serialNumber": "2", "fingerprint": "cd" * 32}
    assert raise_refusal(cp, 3, tls_served=True) is None
    assert raise_refusal(cp, 1, tls_served=True).status == 409  # type: ignore[union-attr]  (at 1 already)
    assert "password" in raise_refusal(registered(), 2, tls_served=True).reason  # type: ignore[union-attr]


def test_an_accepted_security_profile_raises_it_and_nothing_lowers_it_through_ocpp() -> None:
    cp = with_password()  # given at profile 1
    request = {"key": "SecurityProfile", "value": "2"}
    assert cp.prepare_call("ChangeConfiguration", request, NOW) is None

    cp.record_call_answer("m1", "ChangeConfiguration", request, {"status": "Accepted"}, NOW)  # when

    assert profile_of(cp) == 2  # then
    assert type(cp.collect_events()[-1]).__name__ == "SecurityProfileRaised"
    lower = {"key": "securityprofile", "value": "1"}
    assert "A00.FR.005" in str(cp.prepare_call("ChangeConfiguration", lower, NOW))
    assert cp.prepare_call("ChangeConfiguration", {"key": "SecurityProfile", "value": "two"}, NOW) is not None


def test_a_rejected_security_profile_changes_nothing() -> None:
    cp = with_password()
    cp.record_call_answer("m1", "ChangeConfiguration", {"key": "SecurityProfile", "value": "2"},
                          {"status": "Rejected"}, NOW)
    assert profile_of(cp) == 1


@pytest.mark.parametrize("key, ok", [
    ("0123456789abcdef" * 2, True), ("A" * 40, True), ("aB" * 18, True), (bytes(range(16)).hex(), True),
    ("0123456789abcdef", False),  # 8 bytes: too short
    ("A" * 42, False),  # 21 bytes: too long
    ("A" * 33, False),  # not a whole number of bytes
    ("pass*-_=:+|@.word-and-more-of-it", False),  # not hexadecimal
    ("g" * 32, False), ("with space in it!", False), ("ümlaut-characters", False), ("", False),
])
def test_an_authorization_key_is_the_hex_form_of_16_to_20_bytes(key: str, ok: bool) -> None:
    reason = change_configuration_refusal(with_password(), {"key": "AuthorizationKey", "value": key}, NOW)
    assert (reason is None) == ok
    if reason is not None:
        assert key not in reason or key == ""


# ---- admission ---------------------------------------------------------------------------------------


def test_profile_2_needs_tls_and_3_a_client_certificate() -> None:
    plain, tls = Transport(), Transport(tls=True, tls_version="TLSv1.3")
    assert transport_refusal(1, plain, None) is None
    assert transport_refusal(2, plain, None).type == PROFILE_NOT_MET  # type: ignore[union-attr]
    assert transport_refusal(2, tls, None) is None
    assert transport_refusal(3, tls, None).reason.endswith("none was presented")  # type: ignore[union-attr]
    with_certificate = Transport(tls=True, client_certificate=certificate())
    assert transport_refusal(3, with_certificate, None) is None
    refused = transport_refusal(3, with_certificate, "wrong CN")
    assert refused is not None and (refused.status, refused.type) == (403, INVALID_CERTIFICATE)


def test_a_certificate_identifies_by_cn_or_as_the_one_signed_for_it_and_by_o_with_a_cpo_name() -> None:
    assert certificate_refusal(certificate(), "CP-1", None, "CPO", NOW) is None
    assert "CN 'CP-2'" in str(certificate_refusal(certificate("CP-2"), "CP-1", None, None, NOW))
    assert certificate_refusal(certificate("CP-2"), "CP-1", "AB" * 32, None, NOW) is None  # signed for it
    assert "O 'Other'" in str(certificate_refusal(certificate(organization="Other"), "CP-1", None, "CPO", NOW))
    assert certificate_refusal(certificate(organization="Other"), "CP-1", None, None, NOW) is None
    expired = certificate(not_after=NOW - timedelta(seconds=1))
    assert "not valid now" in str(certificate_refusal(expired, "CP-1", None, None, NOW))


def test_a_certificate_that_identifies_it_stands_in_for_the_password() -> None:
    tls_with_certificate = Transport(tls=True, client_certificate=certificate())
    assert needs_password(2, True, None, tls_with_certificate) is False
    assert needs_password(2, True, "wrong CN", tls_with_certificate) is True
    assert needs_password(1, True, None, Transport()) is True
    assert needs_password(0, False, None, Transport()) is False


def test_the_requirements_come_from_the_aggregate() -> None:
    cp = with_password("CP-7")
    set_certificate_name(cp, "SERIAL-7", NOW)
    cp.charge_point_certificate = {"fingerprint": "ef" * 32}
    assert requirements_of(cp) == requirements_of(cp).__class__(1, "SERIAL-7", True, "ef" * 32)
