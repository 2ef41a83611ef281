"""Where a charge point may upload a file it was asked for: a location per request, with a token in its path.

Two kinds of upload are asked for: diagnostics (GetDiagnostics, its
``location``) and logs (GetLog, its ``log.remoteLocation``). An operator who
sends one with a location under this CSMS's ``/{kind}/{chargePointId}``
(under ``--public-url``) has it replaced by
``{public_url}/{kind}/{chargePointId}/{token}/``: a fresh, unguessable token
for that request and that kind, valid for ``TOKEN_LIFETIME``. Only the
token's hash is kept, in the store's side tables (so it survives a restart
and every node knows it), with what the upload belongs to (a GetLog's
requestId and logType), never in an event: history shows the location with
the token hidden.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from adapters.service.settings import Clock
from adapters.store import SideTables

TOKEN_LIFETIME = timedelta(hours=24)
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
DIAGNOSTICS, LOGS = "diagnostics", "logs"

Payload = dict[str, Any]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UploadKind:
    """A kind of upload: the call that asks for it, where its payload names the location, and what it carries."""

    name: str  # the first path segment of its locations
    location: Callable[[Payload], Any]
    with_location: Callable[[Payload, str], Payload]
    detail: Callable[[Payload], Payload] = lambda payload: {}


# By the action whose location is replaced.
KINDS = {
    "GetDiagnostics": UploadKind(
        DIAGNOSTICS,
        location=lambda payload: payload.get("location"),
        with_location=lambda payload, location: dict(payload, location=location),
    ),
    "GetLog": UploadKind(
        LOGS,
        location=lambda payload: (payload.get("log") or {}).get("remoteLocation"),
        with_location=lambda payload, location: dict(payload, log=dict(payload["log"], remoteLocation=location)),
        detail=lambda payload: {"requestId": payload.get("requestId"), "logType": payload.get("logType")},
    ),
}


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: an upload of its kind for its charge point, and what it belongs to."""

    charge_point_id: str
    kind: str
    detail: Payload = field(default_factory=dict)


class UploadTokens:
    def __init__(self, side: SideTables, public_url: str, clock: Clock) -> None:
        self._side = side
        self._public_url = public_url
        self._now = clock

    def own_location(self, charge_point_id: str, location: str, kind: str = DIAGNOSTICS) -> bool:
        """Whether ``location`` points at this CSMS's upload target of that kind for the charge point."""
        base = f"{self._public_url}/{kind}/{charge_point_id}"
        return location == base or location.startswith(base + "/")

    async def issue(self, charge_point_id: str, kind: str = DIAGNOSTICS, detail: Payload | None = None) -> str:
        """A fresh upload location for one request of that kind to the charge point."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        await asyncio.to_thread(self._side.add_upload_token, _hash(token), charge_point_id,
                                int((now + TOKEN_LIFETIME).timestamp()), int(now.timestamp()), kind,
                                json.dumps(detail) if detail else None)
        return f"{self._public_url}/{kind}/{charge_point_id}/{token}/"

    async def with_location(self, charge_point_id: str, action: str, payload: Payload) -> Payload:
        """The payload to send: a GetDiagnostics or GetLog location of our own gets a fresh token."""
        kind = KINDS.get(action)
        if kind is None:
            return payload
        location = kind.location(payload)
        if not isinstance(location, str) or not self.own_location(charge_point_id, location, kind.name):
            return payload
        return kind.with_location(payload, await self.issue(charge_point_id, kind.name, kind.detail(payload)))

    async def grant(self, charge_point_id: str, token: str, kind: str = DIAGNOSTICS) -> Grant | None:
        """What ``token`` allows, if it was issued for this charge point and this kind and has not expired."""
        if not TOKEN.fullmatch(token):
            return None
        holder = await asyncio.to_thread(self._side.upload_token_holder, _hash(token), int(self._now().timestamp()))
        if holder is None or holder[0] != charge_point_id or holder[1] != kind:
            return None
        return Grant(holder[0], holder[1], json.loads(holder[2]) if holder[2] else {})

    async def valid(self, charge_point_id: str, token: str, kind: str = DIAGNOSTICS) -> bool:
        """Whether ``token`` was issued for this charge point and kind and has not expired."""
        return await self.grant(charge_point_id, token, kind) is not None
