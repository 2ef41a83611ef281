"""The certificate authority that signs charge point certificates: built in (`csms ca init`) or given.

`csms ca init` makes an ECDSA P-256 key and a self-signed CA certificate
(CA:TRUE, keyCertSign and cRLSign, 10 years) under ``{data dir}/ca/``; the key
file is created with mode 0600, so it is never readable by others, not even
for a moment. `serve --ca-cert FILE --ca-key FILE` uses an existing CA or
sub-CA instead: its certificate file may hold the CA's own issuers after it,
and the chain sent with each signed certificate is the leaf, then that file.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.security.csr import load_csr
from adapters.security.x509_reading import described, load_chain
from domain.certificate_facts import Certificate

CA_FOLDER = "ca"
CA_CERT, CA_KEY = "ca.crt", "ca.key"
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
BACKDATE = dt.timedelta(minutes=5)  # a charge point whose clock is a little behind still accepts it


class CaError(Exception):
    """The CA cannot be made or used (it exists already, files unreadable, key and certificate apart)."""


def built_in_paths(data_dir: str) -> tuple[Path, Path]:
    folder = Path(data_dir) / CA_FOLDER
    return folder / CA_CERT, folder / CA_KEY


def init(data_dir: str, cpo_name: str | None, now: dt.datetime) -> tuple[Path, Path]:
    """Makes the built-in CA; refuses (CaError) when either file exists."""
    cert_path, key_path = built_in_paths(data_dir)
    if cert_path.exists() or key_path.exists():
        raise CaError(f"a certificate authority exists already in {cert_path.parent}; not overwritten")
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, f"{cpo_name or 'AmpLedger'} Charge Point CA")]
    if cpo_name:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, cpo_name))
    name = x509.Name(attributes)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    # O_EXCL: never over a file that appeared meanwhile; 0600 from the first byte (umask only narrows it).
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_pem)
    with open(cert_path, "xb") as cert_file:
        cert_file.write(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


@dataclass(frozen=True)
class Signed:
    """A charge point certificate just signed: its chain as sent (PEM, leaf first) and what history keeps."""

    chain: str
    certificate: Certificate


class CertificateAuthority:
    def __init__(self, certificate_file: str, key_file: str) -> None:
        try:
            chain_pem = Path(certificate_file).read_text()
            key_pem = Path(key_file).read_bytes()
        except OSError as failure:
            raise CaError(f"cannot read the CA: {failure}") from None
        try:
            self.chain = load_chain(chain_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as failure:
            raise CaError(f"cannot read the CA: {failure}") from None
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise CaError("the CA key must be an EC or RSA key")
        self.certificate = self.chain[0]
        if key.public_key().public_numbers() != self.certificate.public_key().public_numbers():  # type: ignore[union-attr]
            raise CaError(f"{key_file} is not the key of {certificate_file}")
        self._key = key
        self.chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)
        self.certificate_pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def root_pem(self) -> str:
        """The root of this CA's chain: the last certificate of its file (the CA itself when self-signed)."""
        return self.chain[-1].public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, csr_pem: str, now: dt.datetime) -> Signed:
        """A client certificate for a CSR the domain accepted: CN and O from the CSR, one year, a random serial."""
        csr = load_csr(csr_pem)
        kept = [attribute for attribute in csr.subject
                if attribute.oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)]
        key = csr.public_key()
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(kept))
            .issuer_name(self.certificate.subject)
            .public_key(key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + LEAF_VALIDITY, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=isinstance(key, rsa.RSAPublicKey), data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)  # type: ignore[arg-type]
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        chain = leaf.public_bytes(serialization.Encoding.PEM).decode() + self.chain_pem
        return Signed(chain, described(leaf, self.certificate))
