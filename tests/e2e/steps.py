"""Steps the feature-profile stories share: a connected charge point, a command answered."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from tests.ocpp_client import ChargePointClient, Operator, ws_base


@asynccontextmanager
async def connected(server: Any, operator: Operator, charge_point_id: str) -> AsyncIterator[ChargePointClient]:
    """A registered charge point, connected over WebSocket and booted."""
    await operator.register(charge_point_id)
    async with ChargePointClient(ws_base(server), charge_point_id) as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One",
                                           "firmwareVersion": "1.0"})
        yield cp


async def answered(cp: ChargePointClient, command: Any, action: str, reply: dict[str, Any]) -> tuple[list[Any], Any]:
    """Runs `command` (an API request awaiting the charge point) and answers the call it sends."""
    pending = asyncio.ensure_future(command)
    call = await cp.next_call()
    assert call[2] == action, call
    await cp.reply(call, reply)
    return call, await pending


async def exchange(cp: ChargePointClient, operator: Operator, action: str, payload: dict[str, Any],
                   reply: dict[str, Any]) -> tuple[list[Any], int, Any]:
    """A command through the commands endpoint, answered: (call, HTTP status, body)."""
    call, (status, body) = await answered(cp, operator.command(cp.id, action, payload), action, reply)
    assert call[3] == payload
    return call, status, body


async def assert_nothing_was_sent(cp: ChargePointClient, operator: Operator) -> None:
    """The next call the charge point sees is a fresh one, so nothing went out before it."""
    call, status, _ = await exchange(cp, operator, "ClearCache", {}, {"status": "Accepted"})
    assert status == 200 and cp.incoming_calls.empty()


async def sent_actions(operator: Operator, charge_point_id: str) -> list[str]:
    """The actions of every call the CSMS sent this charge point, in order."""
    return [event["data"]["action"] for event in await operator.events(charge_point_id)
            if event["type"] == "CallSent"]
