"""The OpenAPI schemas of the security extension's routes (merged into the document by openapi.py)."""

from __future__ import annotations

from typing import Any

SECURITY_SCHEMAS: dict[str, Any] = {
    "SecurityProfile": {
        "type": "integer",
        "enum": [0, 1, 2, 3],
        "description": "how the charge point must connect: 0 plain, 1 Basic auth, 2 TLS + Basic auth, 3 TLS + "
        "client certificate; unset, 1 with a password, else 0. Lowered only by an operator (PUT), and recorded",
    },
    "SecurityProfileRaise": {
        "type": "object",
        "required": ["profile"],
        "properties": {"profile": {"type": "integer", "enum": [0, 1, 2, 3]}},
    },
    "SecurityProfileRaised": {
        "type": "object",
        "required": ["status", "securityProfile"],
        "properties": {
            "status": {"type": "string", "description": "the charge point's ChangeConfiguration answer"},
            "securityProfile": {"type": "integer", "description": "its profile now"},
        },
    },
}
