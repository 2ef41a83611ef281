"""Charge point passwords, stored only as hashes (adapters/service/passwords.py, security profile 1)."""

from __future__ import annotations

import base64

import pytest

import adapters.service.passwords as passwords
from adapters.service.passwords import (
    VerifiedPasswords,
    basic_credentials,
    hash_password,
    key_password,
    presented_passwords,
    verify_password,
)

PASSWORD = "correct horse battery staple"


def basic(text: bytes) -> str:
    return "Basic " + base64.b64encode(text).decode()


# ---- hashes -------------------------------------------------------------------------


def test_a_hash_does_not_hold_the_password_and_is_salted() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)  # when hashed twice

    assert PASSWORD not in first and PASSWORD.encode().hex() not in first  # then
    assert first != second  # a fresh salt each time
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)


@pytest.mark.parametrize("attempt", ["", "correct horse battery stapler", PASSWORD.upper(), PASSWORD + " "])
def test_only_the_very_password_verifies(attempt: str) -> None:
    assert not verify_password(attempt, hash_password(PASSWORD))


def test_an_empty_or_non_ascii_password_round_trips() -> None:
    assert verify_password("", hash_password(""))
    assert verify_password("pässwört-🔑", hash_password("pässwört-🔑"))


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "pbkdf2_sha256$lots$00ff$00ff",
        "pbkdf2_sha256$1000$zz$00ff",
        "pbkdf2_sha256$0$00ff$00ff",
        "a$b$c$d$e",
        f"pbkdf2_sha256${10**30}$00ff$00ff",
    ],
    ids=["empty", "garbage", "bad iterations", "bad salt", "zero iterations", "too many parts", "iterations overflow"],
)
def test_a_malformed_stored_hash_verifies_nothing_and_raises_nothing(stored: str) -> None:
    assert not verify_password(PASSWORD, stored)


def test_a_hash_of_another_scheme_is_not_trusted() -> None:
    scheme, rest = hash_password(PASSWORD).split("$", 1)  # given a valid digest under another name

    assert not verify_password(PASSWORD, f"md5${rest}")  # then


# ---- the verified-password cache ----------------------------------------------------


def test_a_right_password_is_remembered_so_a_reconnect_costs_no_pbkdf2(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = hash_password(PASSWORD)  # given
    cache = VerifiedPasswords()
    slow_checks: list[str] = []
    real_verify = passwords.verify_password

    def counted_verify(password: str, hashed: str) -> bool:
        slow_checks.append(password)
        return real_verify(password, hashed)

    monkeypatch.setattr(passwords, "verify_password", counted_verify)

    assert cache.check(PASSWORD, stored)  # when / then
    assert cache.check(PASSWORD, stored)
    assert cache.check(PASSWORD, stored)
    assert slow_checks == [PASSWORD]  # PBKDF2 once


def test_a_wrong_password_is_refused_every_time_even_after_a_right_one() -> None:
    stored = hash_password(PASSWORD)  # given the right password already remembered
    cache = VerifiedPasswords()
    assert cache.check(PASSWORD, stored)

    assert not cache.check("guess", stored)  # when / then
    assert not cache.check("guess", stored)
    assert cache.check(PASSWORD, stored)  # a wrong guess does not evict the right one


def test_a_changed_password_starts_cold_and_the_old_one_no_longer_passes() -> None:
    cache = VerifiedPasswords()  # given the old password remembered
    old_hash = hash_password(PASSWORD)
    assert cache.check(PASSWORD, old_hash)

    new_hash = hash_password("a new password")  # when the password changes

    assert not cache.check(PASSWORD, new_hash)  # then
    assert cache.check("a new password", new_hash)


# ---- HTTP Basic headers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "credentials"),
    [
        (basic(b"CP-1:secret"), ("CP-1", "secret")),
        ("basic " + base64.b64encode(b"CP-1:secret").decode(), ("CP-1", "secret")),  # scheme is case-insensitive
        ("BASIC   " + base64.b64encode(b"CP-1:secret").decode() + "  ", ("CP-1", "secret")),
        (basic(b"CP-1:pa:ss:word"), ("CP-1", "pa:ss:word")),  # the password may hold colons
        (basic(b"CP-1:"), ("CP-1", "")),
        (basic("CP-1:pässwört".encode()), ("CP-1", "pässwört")),
        # An AuthorizationKey's password is any bytes: held as text that encodes back to them.
        (basic(b"CP-1:\xff\xfe"), ("CP-1", b"\xff\xfe".decode("utf-8", "surrogateescape"))),
    ],
    ids=["plain", "lower case scheme", "extra spaces", "colons in password", "empty password", "utf-8", "bytes"],
)
def test_a_well_formed_basic_header_gives_its_user_and_password(header: str, credentials: tuple[str, str]) -> None:
    assert basic_credentials(header) == credentials


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer " + base64.b64encode(b"CP-1:secret").decode(),
        "Basic not base64!",
        "Basic " + base64.b64encode(b"CP-1:secret").decode()[:-2],  # padding cut off
        basic(b"no colon at all"),
        basic(b"\xff\xfe:secret"),  # a user (a charge point id) that is not UTF-8
        "Basicx" + base64.b64encode(b"CP-1:secret").decode(),
    ],
    ids=["none", "empty", "scheme only", "scheme and space", "bearer", "not base64", "bad padding", "no colon",
         "user not utf-8", "no space"],
)
def test_a_malformed_header_gives_no_credentials(header: str | None) -> None:
    assert basic_credentials(header) is None


# ---- AuthorizationKeys (OCPP 1.6 Security Whitepaper: the hexadecimal form of the password) -------------


def test_an_authorization_keys_password_is_the_bytes_it_stands_for_and_they_hash_as_bytes() -> None:
    secret = bytes([0xFF, 0x00, 0x3A]) + bytes(range(0xF0, 0x100))  # 19 bytes, not UTF-8, with a colon
    password = key_password(secret.hex())

    stored = hash_password(password)

    assert password.encode("utf-8", "surrogateescape") == secret
    header = basic(b"CP-1:" + secret)
    presented = basic_credentials(header)
    assert presented is not None and verify_password(presented[1], stored)
    assert not verify_password(secret.hex(), stored)


def test_a_presented_hex_key_also_stands_for_its_bytes_and_other_text_only_for_itself() -> None:
    key = b"Battery-Staple-77".hex()
    assert presented_passwords(key) == [key, "Battery-Staple-77"]
    assert presented_passwords("Battery-Staple-77") == ["Battery-Staple-77"]
    assert presented_passwords("abcd" * 4) == ["abcd" * 4]  # 8 bytes: no key
