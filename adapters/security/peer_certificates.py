"""The client certificate a charge point presented in the TLS handshake, read into the domain's values."""

from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from domain.admission import ClientCertificate, Transport


def transport_of(ssl_object: Any) -> Transport:
    """What the connection is: plain (``ssl_object`` None) or TLS, with the verified client certificate if any."""
    if not isinstance(ssl_object, (ssl.SSLObject, ssl.SSLSocket)):
        return Transport()
    der = ssl_object.getpeercert(binary_form=True)
    return Transport(tls=True, tls_version=ssl_object.version(),
                     client_certificate=client_certificate(der) if der else None)


def client_certificate(der: bytes) -> ClientCertificate:
    certificate = x509.load_der_x509_certificate(der)
    return ClientCertificate(
        common_name=_attribute(certificate.subject, NameOID.COMMON_NAME),
        organization=_attribute(certificate.subject, NameOID.ORGANIZATION_NAME),
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        serial_number=format(certificate.serial_number, "X"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None
