"""Charge point passwords (OCPP 1.6 security profile 1), stored only as hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

ITERATIONS = 60_000
MAX_ITERATIONS = 10_000_000
SCHEME = "pbkdf2_sha256"


# A Basic-auth password is bytes: an AuthorizationKey's (OCPP 1.6 Security Whitepaper) is any 16 to 20
# random bytes. As str it is held with each byte that is not UTF-8 as a lone surrogate, so it round-trips.
SURROGATES = "surrogateescape"
# An AuthorizationKey is the hexadecimal form of its password (Whitepaper; OCPP CTT TC_073_CSMS).
AUTHORIZATION_KEY = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")


def _raw(password: str) -> bytes:
    return password.encode("utf-8", SURROGATES)


def key_password(authorization_key: str) -> str:
    """The Basic-auth password a charge point uses once it accepted this AuthorizationKey: its bytes."""
    return bytes.fromhex(authorization_key).decode("utf-8", SURROGATES)


def presented_passwords(password: str) -> list[str]:
    """What a presented Basic-auth password may stand for: itself, and, when it is an AuthorizationKey's
    hexadecimal text (charge points that send the key as it came rather than the bytes it stands for),
    the bytes it stands for too."""
    if AUTHORIZATION_KEY.fullmatch(password):
        return [password, key_password(password)]
    return [password]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", _raw(password), salt, ITERATIONS)
    return f"{SCHEME}${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        rounds = int(iterations)
        if not 0 < rounds <= MAX_ITERATIONS:
            return False  # a corrupt row refuses the charge point; it must not hang or crash
        expected = bytes.fromhex(digest)
        candidate = hashlib.pbkdf2_hmac("sha256", _raw(password), bytes.fromhex(salt), rounds)
    except (ValueError, OverflowError):
        return False
    return scheme == SCHEME and hmac.compare_digest(candidate, expected)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The (user, password) of an HTTP Basic Authorization header, if well formed.

    The user (a charge point id) is UTF-8 text; the password any bytes (see SURROGATES).
    """
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
        return (user.decode("utf-8"), password.decode("utf-8", SURROGATES)) if sep else None
    except (binascii.Error, UnicodeDecodeError):
        return None


class VerifiedPasswords:
    """Remembers passwords that matched a hash, so a reconnect storm costs no PBKDF2.

    Keyed by the stored hash: a changed password has a new hash and starts cold.
    """

    def __init__(self) -> None:
        self._matched: dict[str, bytes] = {}

    def check(self, password: str, stored: str) -> bool:
        fingerprint = hashlib.sha256(_raw(password)).digest()
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


# Wrong passwords before the back-off starts: few for one charge point, more
# for one address, which many charge points may share behind a NAT.
FREE_FAILURES_PER_ID = 3
FREE_FAILURES_PER_ADDRESS = 50
MAX_BACKOFF = timedelta(seconds=60)
MAX_TRACKED = 100_000  # ids and addresses remembered at once; beyond it the expired ones go


class FailedAttempts:
    """Wrong passwords per key (a charge point id, or a source address), and how long each must wait.

    After ``free`` wrong passwords a key waits 1, 2, 4, ... seconds (at most
    MAX_BACKOFF) from its last failure. Meanwhile a handshake for it is
    answered 401 without hashing, so a flood of guesses costs no PBKDF2 and
    cannot starve the charge points that know their password.
    """

    def __init__(self, free: int) -> None:
        self._free = free
        self._failures: dict[str, tuple[int, datetime]] = {}  # key -> (count, last failure)

    def wait(self, now: datetime, key: str) -> timedelta:
        """How long ``key`` must still wait before its password is checked again (zero: not at all)."""
        return max(self._until(key) - now, timedelta(0)) if key in self._failures else timedelta(0)

    def _until(self, key: str) -> datetime:
        count, last = self._failures[key]
        if count < self._free:
            return last
        return last + min(timedelta(seconds=2 ** min(count - self._free, 16)), MAX_BACKOFF)

    def failed(self, now: datetime, key: str) -> None:
        if len(self._failures) >= MAX_TRACKED:
            self._failures = {known: entry for known, entry in self._failures.items() if self._until(known) > now}
        count, _ = self._failures.get(key, (0, now))
        self._failures[key] = (count + 1, now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
