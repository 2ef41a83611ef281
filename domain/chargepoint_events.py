"""The ChargePoint events whose stored shape changed, and how older ones are read.

Most of ChargePoint's events are defined by the @event decorators in
domain/chargepoint.py. Those here are declared as classes because events of
an older shape are already stored: each has a class_version and upcasters
(eventsourcing calls ``upcast_vN_vN+1`` on the stored state of an older
event as it reads it), and the aggregate's private @event method applies it.

How history written before events said what happened in the domain's words
is read, so that nothing but the domain works out what an exchange meant:

- ConnectorStatusChanged 1 -> 2 gains ``status_timestamp``, and
  TransactionStopped 1 -> 2 ``duration_seconds``, from the same rules that
  decide them today (state_shapes.status_time_of; for a stop's totals,
  which need its start, see session_totals.carried_by);
- CallAnswered and CallFailed 1 -> 2: since version 2 what an answer means
  is recorded beside it as events (ReservationAccepted, LocalListUpdated,
  ...). A version 1 answer is read with what it implied, under ``implied``,
  worked out by domain/call_outcomes.py, the one place that says what an
  answer means. The aggregate applies those outcomes as it replays the
  answer; the read models take them as the events they imply
  (ChargePoint.implied_events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from eventsourcing.utils import register_topic

from domain import call_outcomes
from domain.event_bases import TextIdEvent
from domain.state_shapes import status_time_of

Payload = dict[str, Any]


def topic(event_name: str) -> str:
    """The stored topic of one of ChargePoint's events (they are named explicitly)."""
    return f"ampledger:ChargePoint.{event_name}"


class ChargePointEvent(TextIdEvent):
    """ChargePoint.Event: the base of every event of a charge point."""

    TOPIC = topic("Event")


E = TypeVar("E", bound=type[ChargePointEvent])


def declared(event_class: E) -> E:
    """Registers an event class declared outside the aggregate under its topic.

    The security extension's events (domain/security_*.py, domain/certificates.py, ...)
    are classes with an ``apply(cp)`` method, triggered with ``cp.trigger_event``,
    so that the aggregate's own module stays the core profile's; the library finds
    them, as it replays, by their registered topic.
    """
    register_topic(event_class.TOPIC, event_class)
    return event_class


class ConnectorStatusChanged(ChargePointEvent):
    """Version 2 carries status_timestamp: when the status began."""

    TOPIC = topic("ConnectorStatusChanged")
    class_version = 2
    message_id: str
    request: Payload
    reply: Payload
    received_at: datetime
    status_timestamp: str

    @staticmethod
    def upcast_v1_v2(state: Payload) -> None:
        state["status_timestamp"] = status_time_of(state["request"], state["received_at"])


class TransactionStopped(ChargePointEvent):
    """Version 2 carries the session's totals as decided once (domain/session_totals.py).

    Version 1 had flags and energy_wh only, as decided then, and no duration;
    its readers work the totals out with session_totals (see carried_by).
    """

    TOPIC = topic("TransactionStopped")
    class_version = 2
    message_id: str
    request: Payload
    reply: Payload
    received_at: datetime
    flags: list[str]
    energy_wh: int | None
    duration_seconds: int | None

    @staticmethod
    def upcast_v1_v2(state: Payload) -> None:
        state["duration_seconds"] = None


class CallAnswered(ChargePointEvent):
    """A call the charge point answered: the exchange as it happened."""

    TOPIC = topic("CallAnswered")
    class_version = 2
    message_id: str
    action: str
    request: Payload
    reply: Payload
    received_at: datetime
    upcast_v1_v2 = staticmethod(call_outcomes.imply_answer)


class CallFailed(ChargePointEvent):
    """A call the charge point answered with a CALLERROR (or that the connection lost)."""

    TOPIC = topic("CallFailed")
    class_version = 2
    message_id: str
    action: str
    request: Payload
    error_code: str
    error_description: str
    error_details: Payload
    received_at: datetime
    upcast_v1_v2 = staticmethod(call_outcomes.imply_error)
