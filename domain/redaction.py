"""What of a central system call is kept in history: everything but secrets.

The AuthorizationKey is a charge point's Basic-auth password (OCPP 1.6
security profile 1); history must never hold it. Configuration keys are
CiString50, so "authorizationkey" is the same key.
"""

from __future__ import annotations

import re
from typing import Any

HIDDEN = "<hidden>"
SECRET_CONFIGURATION_KEYS = frozenset({"AuthorizationKey"})
_SECRET_KEYS = frozenset(key.lower() for key in SECRET_CONFIGURATION_KEYS)
PASSWORD_KEY = "authorizationkey"
# The token this CSMS puts in a GetDiagnostics or GetLog location: a secret for the upload alone.
UPLOAD_TOKEN = re.compile(r"(/(?:diagnostics|logs)/[^/]+/)[A-Za-z0-9_-]{43}/")


def is_secret(key: str) -> bool:
    return key.lower() in _SECRET_KEYS


def recorded_request(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "ChangeConfiguration" and is_secret(str(payload.get("key", ""))):
        return dict(payload, value=HIDDEN)
    if action == "GetDiagnostics" and isinstance(payload.get("location"), str):
        return dict(payload, location=_hidden_token(payload["location"]))
    log = payload.get("log")
    if action == "GetLog" and isinstance(log, dict) and isinstance(log.get("remoteLocation"), str):
        return dict(payload, log=dict(log, remoteLocation=_hidden_token(log["remoteLocation"])))
    return payload


def _hidden_token(location: str) -> str:
    return UPLOAD_TOKEN.sub(rf"\g<1>{HIDDEN}/", location)


def recorded_reply(action: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A reply as history keeps it: a charge point that reports a secret key's value is not believed."""
    entries = reply.get("configurationKey", [])
    if action == "GetConfiguration" and any(is_secret(str(entry.get("key", ""))) for entry in entries):
        return dict(
            reply,
            configurationKey=[
                dict(entry, value=HIDDEN) if is_secret(str(entry.get("key", ""))) and "value" in entry else entry
                for entry in reply["configurationKey"]
            ],
        )
    return reply


def sets_password(action: str, payload: dict[str, Any]) -> str | None:
    """The new Basic-auth password this call sets once accepted, if it sets one."""
    if action == "ChangeConfiguration" and str(payload.get("key", "")).lower() == PASSWORD_KEY:
        return str(payload["value"])
    return None
