"""What of a central system call is kept in history: everything but secrets.

The AuthorizationKey is a charge point's Basic-auth password (OCPP 1.6
security profile 1); history must never hold it.
"""

from __future__ import annotations

from typing import Any

HIDDEN = "<hidden>"
SECRET_CONFIGURATION_KEYS = frozenset({"AuthorizationKey"})


def recorded_request(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "ChangeConfiguration" and payload.get("key") in SECRET_CONFIGURATION_KEYS:
        return dict(payload, value=HIDDEN)
    return payload


def sets_password(action: str, payload: dict[str, Any]) -> str | None:
    """The new Basic-auth password this call sets once accepted, if it sets one."""
    if action == "ChangeConfiguration" and payload.get("key") == "AuthorizationKey":
        return str(payload["value"])
    return None
