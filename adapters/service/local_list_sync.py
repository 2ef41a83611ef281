"""Bringing a charge point's Local Authorization List to the IdTag registry.

Differential when the CSMS knows the list the charge point holds, Full
otherwise; within the charge point's limits (LocalAuthListMaxLength,
SendLocalListMaxLength: asked with GetConfiguration when not known); a long
update goes in parts, stopping at the first part not Accepted; a
VersionMismatch is followed by GetLocalListVersion and a Full update.
"""

from __future__ import annotations

from typing import Any

from adapters.service.authorization import Authorizer
from adapters.service.chargepoints import ChargePoints
from adapters.service.commands import Commands
from adapters.service.sessions import CallRejected
from domain.local_list import (
    CAPACITY_KEY,
    PER_MESSAGE_KEY,
    in_messages,
    list_from_registry,
    list_limits,
    plan_update,
)

Payload = dict[str, Any]


class ListTooLong(Exception):
    """The registry holds more tags than the charge point's list can; nothing was sent."""

    def __init__(self, charge_point_id: str, tags: int, capacity: int) -> None:
        super().__init__(
            f"the IdTag registry holds {tags} tags; {charge_point_id} keeps at most {capacity} ({CAPACITY_KEY})"
        )
        self.tags = tags
        self.capacity = capacity


class LocalListSync:
    def __init__(self, charge_points: ChargePoints, commands: Commands, authorizer: Authorizer) -> None:
        self._charge_points = charge_points
        self._commands = commands
        self._authorizer = authorizer

    async def sync(self, charge_point_id: str, full: bool = False) -> Payload:
        """Sends what differs; returns the last part's outcome with every attempt."""
        configuration = await self._charge_points.change(charge_point_id, lambda cp: dict(cp.configuration))
        capacity, per_message = await self._limits(charge_point_id, configuration)
        desired = list_from_registry(self._authorizer.registry.tags.values())
        if capacity is not None and len(desired) > capacity:
            raise ListTooLong(charge_point_id, len(desired), capacity)
        # Read after the limits' round trip, so a list sent meanwhile is taken into account.
        version, held = await self._charge_points.change(
            charge_point_id, lambda cp: (cp.local_list_version, cp.local_list)
        )
        update = plan_update(desired, held, version, full=full)
        if update is None:
            return {"status": "UpToDate", "listVersion": version, "attempts": []}
        attempts = await self._send_in_messages(charge_point_id, update, per_message)
        if attempts[-1]["status"] == "VersionMismatch":
            # The charge point's list moved on without us: ask its version, then send it all.
            reported = await self._commands.send(charge_point_id, "GetLocalListVersion", {})
            update = plan_update(desired, None, reported["listVersion"], full=True)
            assert update is not None
            attempts += await self._send_in_messages(charge_point_id, update, per_message)
        return {**attempts[-1], "attempts": attempts}

    async def _limits(self, charge_point_id: str, configuration: dict[str, Any]) -> tuple[int | None, int | None]:
        """The list's limits as the configuration knows them; asked for (GetConfiguration) when it does not."""
        known = {key.lower() for key in configuration}
        if CAPACITY_KEY.lower() in known and PER_MESSAGE_KEY.lower() in known:
            return list_limits(configuration)
        try:
            reply = await self._commands.send(
                charge_point_id, "GetConfiguration", {"key": [CAPACITY_KEY, PER_MESSAGE_KEY]}
            )
        except CallRejected:
            return None, None  # no usable answer (a CALLERROR, an invalid reply): send as if it had no limits
        return list_limits({entry["key"]: entry for entry in reply.get("configurationKey", [])})

    async def _send_in_messages(self, charge_point_id: str, update: Payload, per_message: int | None) -> list[Payload]:
        """Sends the update's parts in order; stops at the first part not Accepted."""
        attempts: list[Payload] = []
        for part in in_messages(update, per_message):
            reply = await self._commands.send(charge_point_id, "SendLocalList", part)
            attempts.append({
                "status": reply["status"],
                "updateType": part["updateType"],
                "listVersion": part["listVersion"],
                "entries": len(part["localAuthorizationList"]),
            })
            if reply["status"] != "Accepted":
                break
        return attempts

