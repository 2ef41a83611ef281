"""Signing firmware images (OCPP 1.6 Security Whitepaper, SignedUpdateFirmware).

``serve --firmware-signing-key FILE --firmware-signing-cert FILE``: a PEM
private key (RSA or EC, unencrypted) and the PEM certificate of its public
key, the Firmware Signing certificate charge points check the signature
with. An image is signed over its SHA-256 digest (computed as it is received,
so a large image is not read twice): RSA-SHA256 (PKCS #1 v1.5) for an RSA
key, ECDSA-SHA256 (DER-encoded) for an EC key. The signature goes out base64.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

RSA_SHA256, ECDSA_SHA256 = "RSA-SHA256", "ECDSA-SHA256"
MAX_CERTIFICATE = 5500  # SignedUpdateFirmware's signingCertificate is string[5500]


class SigningSetupError(ValueError):
    """The signing key or certificate cannot be used; the message says why."""


@dataclass(frozen=True)
class Signature:
    algorithm: str
    signature: str  # base64
    signing_certificate: str  # PEM


@dataclass(frozen=True)
class FirmwareSigner:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate_pem: str

    @property
    def algorithm(self) -> str:
        return RSA_SHA256 if isinstance(self.key, rsa.RSAPrivateKey) else ECDSA_SHA256

    def sign_digest(self, sha256_hex: str) -> Signature:
        """The signature of the data whose SHA-256 digest is ``sha256_hex``."""
        digest = bytes.fromhex(sha256_hex)
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(self.key, rsa.RSAPrivateKey):
            signed = self.key.sign(digest, padding.PKCS1v15(), prehashed)
        else:
            signed = self.key.sign(digest, ec.ECDSA(prehashed))
        return Signature(self.algorithm, base64.b64encode(signed).decode(), self.certificate_pem)


def load_signer(key_file: str | None, certificate_file: str | None) -> FirmwareSigner | None:
    """The signer the two files make, None when neither is given; SigningSetupError when they do not fit."""
    if key_file is None and certificate_file is None:
        return None
    if key_file is None or certificate_file is None:
        raise SigningSetupError("--firmware-signing-key and --firmware-signing-cert go together")
    try:
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except OSError as failure:
        raise SigningSetupError(f"cannot read the firmware signing key {key_file}: {failure.strerror}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as failure:
        raise SigningSetupError(f"{key_file} is no unencrypted PEM private key: {failure}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningSetupError(f"{key_file}: the firmware signing key must be an RSA or EC key")
    try:
        certificate = x509.load_pem_x509_certificate(Path(certificate_file).read_bytes())
    except OSError as failure:
        raise SigningSetupError(f"cannot read the firmware signing certificate {certificate_file}: "
                                f"{failure.strerror}") from None
    except ValueError as failure:
        raise SigningSetupError(f"{certificate_file} is no PEM certificate: {failure}") from None
    if certificate.public_key() != key.public_key():
        raise SigningSetupError(f"{certificate_file} is not the certificate of the key in {key_file}")
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    if len(pem) > MAX_CERTIFICATE:
        raise SigningSetupError(f"{certificate_file} is longer than the {MAX_CERTIFICATE} characters "
                                "SignedUpdateFirmware carries")
    return FirmwareSigner(key, pem)
