"""Forwarded commands (adapters/service/forwarding.py): the holder's outcome is the asker's.

What the holding node's Commands.send_here ends with (a reply, or one of its
failures) travels as a JSON message and becomes the same reply or the same
exception on the asking node, so the API answers with the same status.
The transport (NOTIFY) is tested end to end in tests/e2e/test_scale_out.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.service.commands import CommandRefused
from adapters.service.forwarding import Forwarder, outcome_of
from adapters.service.sessions import CallRejected, CallTimeout, NotConnected


class Bus:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def handle(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler


async def forwarded(ends_with: Any) -> dict[str, Any]:
    """The answer a holder whose send_here ends like ``ends_with`` sends back, through JSON."""
    bus = Bus()

    async def send_here(charge_point_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if isinstance(ends_with, Exception):
            raise ends_with
        return dict(ends_with)

    Forwarder(registry=None, bus=bus).serve(send_here)  # type: ignore[arg-type]
    answer = await bus.handlers["command"]({"chargePointId": "CP-9", "action": "Reset", "payload": {"type": "Soft"}})
    return orjson.loads(orjson.dumps(answer))  # as it travels


async def test_a_reply_comes_back_as_it_was():
    answer = await forwarded({"status": "Accepted", "data": "x" * 10})
    assert outcome_of("CP-9", "Reset", answer) == {"status": "Accepted", "data": "x" * 10}


async def test_a_callerror_comes_back_with_its_code_description_and_details():
    answer = await forwarded(CallRejected("CP-9", "Reset", "NotSupported", "no resets", {"why": "test"}))
    with pytest.raises(CallRejected) as raised:
        outcome_of("CP-9", "Reset", answer)
    assert (raised.value.code, raised.value.description, raised.value.details) == (
        "NotSupported", "no resets", {"why": "test"})


@pytest.mark.parametrize("failure", [
    NotConnected("CP-9 is not connected"), CallTimeout("CP-9 did not answer Reset within 2 s"),
])
async def test_not_connected_and_no_answer_come_back_with_their_message(failure):
    answer = await forwarded(failure)
    with pytest.raises(type(failure), match=str(failure)):
        outcome_of("CP-9", "Reset", answer)


async def test_a_refusal_of_the_domain_comes_back_with_its_reason():
    answer = await forwarded(CommandRefused("Reset", "the rule says no"))
    with pytest.raises(CommandRefused) as raised:
        outcome_of("CP-9", "Reset", answer)
    assert raised.value.reason == "the rule says no"


@pytest.mark.logs_traceback("the holder logs what went wrong on its side")
async def test_anything_else_on_the_holder_is_a_failure_here_without_its_detail(caplog):
    answer = await forwarded(KeyError("secret internals"))
    with pytest.raises(RuntimeError) as raised:
        outcome_of("CP-9", "Reset", answer)
    assert "secret internals" not in str(raised.value)
