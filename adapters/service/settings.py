"""What an operator sets on the command line, and the clock the service reads."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable
from urllib.parse import urlsplit

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    heartbeat_interval: int = 300
    call_timeout: float = 30.0
    auto_register: bool = False
    ping_interval: float = 60.0
    max_frame_size: int = 256 * 1024
    data_dir: str = "csms-files"  # firmware images and diagnostics uploads
    max_file_size: int = 64 * 1024 * 1024
    # Where charge points reach this server (firmware download URLs); never the request's Host header.
    public_url: str = "http://localhost:9000"
    # TLS is served (--tls-cert/--tls-key): security profiles 2 and 3 can be met.
    tls_served: bool = False
    # Certificates (Security Whitepaper): the CPO name charge point certificates carry as O (a client
    # certificate's and a CSR's), and the CA that signs them (the built-in one under data_dir/ca, or
    # --ca-cert/--ca-key); none: CSRs are Rejected.
    cpo_name: str | None = None
    ca_cert: str | None = None
    ca_key: str | None = None
    csr_approval: str = "auto"  # or "manual": an operator approves each CSR (/api/certificate-requests)
    # The key and certificate that sign firmware images (Security Whitepaper); None: images are not signed.
    firmware_signing_key: str | None = None
    firmware_signing_cert: str | None = None
    # This process among several on one PostgreSQL database (--node-name; default host:port:pid).
    node_name: str = "local"
    # Seconds a node's hold on its charge points lasts unrenewed (CSMS_NODE_LEASE; tests shorten it;
    # node_registry.LEASE_SECONDS is the same default).
    node_lease: float = 15.0


def default_node_name(port: int) -> str:
    """host:port:pid: unique among the processes of a machine, and among machines by their names."""
    return f"{socket.gethostname()}:{port}:{os.getpid()}"


class PublicUrlError(ValueError):
    pass


def public_url(given: str | None, host: str, port: int, scheme: str = "http") -> str:
    """The base URL charge points are given: ``--public-url``, else the listening address.

    A wildcard listening address (0.0.0.0, ::) is no address to give out, so
    the machine's host name stands in for it.
    """
    if given is None:
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise PublicUrlError(f"--public-url must be an http:// or https:// URL with a host, not {given!r}")
    return given.rstrip("/")
