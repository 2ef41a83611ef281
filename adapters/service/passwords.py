"""Charge point passwords (OCPP 1.6 security profile 1), stored only as hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

ITERATIONS = 60_000
MAX_ITERATIONS = 10_000_000
SCHEME = "pbkdf2_sha256"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"{SCHEME}${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        rounds = int(iterations)
        if not 0 < rounds <= MAX_ITERATIONS:
            return False  # a corrupt row refuses the charge point; it must not hang or crash
        expected = bytes.fromhex(digest)
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), rounds)
    except (ValueError, OverflowError):
        return False
    return scheme == SCHEME and hmac.compare_digest(candidate, expected)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The (user, password) of an HTTP Basic Authorization header, if well formed."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class VerifiedPasswords:
    """Remembers passwords that matched a hash, so a reconnect storm costs no PBKDF2.

    Keyed by the stored hash: a changed password has a new hash and starts cold.
    """

    def __init__(self) -> None:
        self._matched: dict[str, bytes] = {}

    def check(self, password: str, stored: str) -> bool:
        fingerprint = hashlib.sha256(password.encode()).digest()
        known = self._matched.get(stored)
        if known is not None and hmac.compare_digest(known, fingerprint):
            return True
        if verify_password(password, stored):
            self._matched[stored] = fingerprint
            return True
        return False


class PendingKeys:
    """AuthorizationKeys sent to charge points and not answered yet: hashes by charge point.

    Security profile 1: a charge point may reconnect with a new key the moment
    it answers, before the answer is recorded, so either key admits it meanwhile.
    """

    def __init__(self) -> None:
        self._hashes: dict[str, set[str]] = {}

    def add(self, charge_point_id: str, password_hash: str) -> None:
        self._hashes.setdefault(charge_point_id, set()).add(password_hash)

    def discard(self, charge_point_id: str, password_hash: str) -> None:
        # Only this one: another queued change keeps its own key.
        pending = self._hashes.get(charge_point_id)
        if pending is not None:
            pending.discard(password_hash)
            if not pending:
                del self._hashes[charge_point_id]

    def of(self, charge_point_id: str) -> list[str]:
        return list(self._hashes.get(charge_point_id, ()))
