"""Where a charge point may upload its diagnostics: a location per GetDiagnostics, with a token in its path.

An operator who sends GetDiagnostics with a ``location`` under this CSMS's
``/diagnostics/{chargePointId}`` (under ``--public-url``) has it replaced by
``{public_url}/diagnostics/{chargePointId}/{token}/``: a fresh, unguessable
token for that request, valid for ``TOKEN_LIFETIME``. Only the token's hash
is kept, in the store's side tables (so it survives a restart and every node
knows it), never in an event: history shows the location with the token hidden.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any

from adapters.service.settings import Clock
from adapters.store import SideTables

TOKEN_LIFETIME = timedelta(hours=24)
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UploadTokens:
    def __init__(self, side: SideTables, public_url: str, clock: Clock) -> None:
        self._side = side
        self._public_url = public_url
        self._now = clock

    def own_location(self, charge_point_id: str, location: str) -> bool:
        """Whether ``location`` points at this CSMS's upload target for the charge point."""
        base = f"{self._public_url}/diagnostics/{charge_point_id}"
        return location == base or location.startswith(base + "/")

    async def issue(self, charge_point_id: str) -> str:
        """A fresh upload location for one GetDiagnostics of the charge point."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        await asyncio.to_thread(self._side.add_upload_token, _hash(token), charge_point_id,
                                int((now + TOKEN_LIFETIME).timestamp()), int(now.timestamp()))
        return f"{self._public_url}/diagnostics/{charge_point_id}/{token}/"

    async def with_location(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload to send: a GetDiagnostics location of our own gets a fresh token."""
        location = payload.get("location")
        if action != "GetDiagnostics" or not isinstance(location, str) or not self.own_location(
                charge_point_id, location):
            return payload
        return dict(payload, location=await self.issue(charge_point_id))

    async def valid(self, charge_point_id: str, token: str) -> bool:
        """Whether ``token`` was issued for this charge point and has not expired."""
        if not TOKEN.fullmatch(token):
            return False
        holder = await asyncio.to_thread(self._side.upload_token_holder, _hash(token), int(self._now().timestamp()))
        return holder == charge_point_id
