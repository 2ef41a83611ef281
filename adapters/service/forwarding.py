"""Operators' commands for a charge point connected to another node go to that node.

Any node's API serves any charge point: a command for one whose socket
another node holds is sent to that node (a request on the node bus), which
sends it through its own session, records the outcome in the charge point's
history as for its own operators, and answers. Its outcome becomes the same
exception here as it would be there, so the API answers with the same status.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from adapters.service.commands import CommandRefused
from adapters.service.node_bus import NodeBus, Unanswered
from adapters.service.node_registry import ClusterRegistry
from adapters.service.sessions import CallRejected, CallTimeout, NotConnected
from adapters.store import Message

log = logging.getLogger(__name__)

Payload = dict[str, Any]
SendHere = Callable[[str, str, Payload], Awaitable[Payload]]

ACKNOWLEDGE_WAIT = 2.0  # seconds the holder has to take a forwarded command before it counts as gone


class Forwarder:
    def __init__(self, registry: ClusterRegistry, bus: NodeBus) -> None:
        self._registry = registry
        self._bus = bus
        self._send_here: SendHere | None = None

    def serve(self, send_here: SendHere) -> None:
        """Commands other nodes forward are sent with ``send_here`` (this node's sessions only)."""
        self._send_here = send_here
        self._bus.handle("command", self._on_command)

    async def forward(self, charge_point_id: str, action: str, payload: Payload) -> Payload:
        """Sends the command through the node holding the charge point; raises as Commands.send does."""
        holder = await self._registry.holder(charge_point_id)
        if holder is None or holder.node == self._registry.node:
            raise NotConnected(f"{charge_point_id} is not connected")

        async def still_held() -> bool:
            return await self._registry.holder(charge_point_id) == holder

        try:
            answer = await self._bus.request(
                holder.node, "command", {"chargePointId": charge_point_id, "action": action, "payload": payload},
                acknowledged_within=ACKNOWLEDGE_WAIT, still_worth_it=still_held,
            )
        except Unanswered as failure:
            log.warning("%s: %s", charge_point_id, failure)
            raise NotConnected(f"{charge_point_id} is not connected (node {holder.node} does not answer)") from None
        return outcome_of(charge_point_id, action, answer)

    async def _on_command(self, message: Message) -> Message:
        if self._send_here is None:
            return {"outcome": "NotConnected", "message": "this node serves no commands yet"}
        charge_point_id, action, payload = message["chargePointId"], message["action"], message["payload"]
        try:
            return {"outcome": "answered", "reply": await self._send_here(charge_point_id, action, payload)}
        except CallRejected as failure:
            return {"outcome": "CallRejected", "code": failure.code, "description": failure.description,
                    "details": failure.details}
        except CommandRefused as failure:
            return {"outcome": "CommandRefused", "reason": failure.reason}
        except (NotConnected, CallTimeout) as failure:
            return {"outcome": type(failure).__name__, "message": str(failure)}
        except Exception as failure:
            log.exception("%s: a forwarded %s failed", charge_point_id, action)
            return {"outcome": "failed", "message": f"{type(failure).__name__} on the node holding it"}


def outcome_of(charge_point_id: str, action: str, answer: Message) -> Payload:
    """The holder's answer as Commands.send would have ended here: its reply, or its exception."""
    outcome = answer.get("outcome")
    if outcome == "answered" and isinstance(answer.get("reply"), dict):
        reply: Payload = answer["reply"]
        return reply
    if outcome == "CallRejected":
        raise CallRejected(charge_point_id, action, str(answer.get("code")), str(answer.get("description")),
                           answer.get("details") or {})
    if outcome == "CommandRefused":
        raise CommandRefused(action, str(answer.get("reason")))
    if outcome == "CallTimeout":
        raise CallTimeout(str(answer.get("message")))
    if outcome == "NotConnected":
        raise NotConnected(str(answer.get("message")))
    raise RuntimeError(f"{action} for {charge_point_id} failed on the node holding it: {answer.get('message')}")
