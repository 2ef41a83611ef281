"""The server's TLS: one SSLContext built from the operator's files, reloaded in place on SIGHUP.

OCPP 1.6 Security Whitepaper, section 2 (profiles 2 and 3): TLS 1.2 or newer, no
compression, no renegotiation, and the four TLS 1.2 cipher suites it requires
(ECDHE-ECDSA with AES-128/256-GCM for an ECDSA certificate, RSA with
AES-128/256-GCM for an RSA one) offered; with an RSA certificate the
forward-secret ECDHE-RSA suites come first. An RSA and an ECDSA pair can be
loaded into the same context (OpenSSL keeps one certificate per key type),
so a client of either kind finds its suites. TLS 1.3 is allowed, its suites
are OpenSSL's. Client certificates are asked for (CERT_OPTIONAL) when there is
a CA to verify them against: OpenSSL then refuses a chain it cannot verify
(or an expired certificate) in the handshake itself.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

log = logging.getLogger(__name__)

WHITEPAPER_SUITES = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                     "AES128-GCM-SHA256", "AES256-GCM-SHA384")
FORWARD_SECRET_RSA = ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384")
CIPHERS = ":".join((*WHITEPAPER_SUITES[:2], *FORWARD_SECRET_RSA, *WHITEPAPER_SUITES[2:]))


class TlsError(ValueError):
    """Files the server cannot serve TLS with: which, and why."""


@dataclass(frozen=True)
class TlsFiles:
    """What the TLS context is built from: certificate/key pairs, and the CAs client certificates lead to.

    ``optional_cas`` may be missing (the built-in CA before ``csms ca init``); ``client_cas`` may not.
    """

    pairs: tuple[tuple[str, str], ...]
    client_cas: tuple[str, ...] = ()
    optional_cas: tuple[str, ...] = ()

    def trusted(self) -> tuple[str, ...]:
        return (*self.client_cas, *(path for path in self.optional_cas if os.path.exists(path)))


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS server context loaded from ``files``; raises TlsError naming the file that is wrong."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(CIPHERS)
    _load(context, files)
    return context


def reload(context: ssl.SSLContext, files: TlsFiles) -> None:
    """Loads the files again into the live context: new handshakes use them, open connections keep theirs.

    Everything is first loaded into a scratch context, so a bad file raises TlsError and leaves the
    live context as it was.
    """
    server_context(files)
    _load(context, files)


def _load(context: ssl.SSLContext, files: TlsFiles) -> None:
    if not files.pairs:
        raise TlsError("--tls-cert and --tls-key are needed for TLS")
    kinds = []
    for certificate, key in files.pairs:
        kinds.append(_key_kind(certificate))
        try:
            context.load_cert_chain(certificate, key, password=_encrypted(key))
        except (ssl.SSLError, OSError) as failure:
            raise TlsError(f"cannot use the TLS certificate {certificate} with the key {key}: "
                           f"{_why(failure)}") from None
    if len(set(kinds)) != len(kinds):
        raise TlsError("--tls-cert/--tls-key twice must be one RSA and one ECDSA pair, not two "
                       f"{kinds[0]} ones")
    trusted = files.trusted()
    for authority in trusted:
        try:
            context.load_verify_locations(cafile=authority)
        except (ssl.SSLError, OSError) as failure:
            raise TlsError(f"cannot read the CA certificate {authority}: {_why(failure)}") from None
    if trusted:
        context.verify_mode = ssl.CERT_OPTIONAL


def _encrypted(key: str) -> Callable[[], str]:
    """Asked only for an encrypted key: refuse it rather than let OpenSSL prompt on the terminal."""

    def refuse() -> str:
        raise TlsError(f"the TLS key {key} is encrypted; give it unencrypted (readable by this user only)")

    return refuse


def _key_kind(certificate: str) -> str:
    try:
        with open(certificate, "rb") as file:
            key = x509.load_pem_x509_certificate(file.read()).public_key()
    except (OSError, ValueError) as failure:
        raise TlsError(f"cannot read the TLS certificate {certificate}: {_why(failure)}") from None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    raise TlsError(f"the TLS certificate {certificate} has a {type(key).__name__}; RSA or ECDSA is needed")


def _why(failure: Exception) -> str:
    if isinstance(failure, OSError) and failure.strerror:
        return failure.strerror
    return str(getattr(failure, "reason", None) or failure)


# OpenSSL's reasons for a failed handshake, grouped into the few /metrics counts by.
REASONS = {
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_VERSION_NUMBER": "protocol_version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol_version",
    "VERSION_TOO_LOW": "protocol_version",
    "NO_SHARED_CIPHER": "cipher",
    "NO_CIPHERS_AVAILABLE": "cipher",
    "CERTIFICATE_VERIFY_FAILED": "client_certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "server_certificate_refused",
    "TLSV1_ALERT_UNKNOWN_CA": "server_certificate_refused",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "server_certificate_refused",
    "HTTP_REQUEST": "plain_http",
}


class HandshakeStats:
    """TLS handshakes that failed, by reason: before any HTTP, so no charge point can be named."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()
        self.reloads: Counter[str] = Counter()  # "ok" and "failed"

    def failed(self, failure: ssl.SSLError) -> None:
        reason = REASONS.get(str(failure.reason), "other")
        self.failures[reason] += 1
        log.warning("a TLS handshake failed (%s): %s", reason, failure)
