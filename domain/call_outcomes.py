"""What a charge point's answer to a central-system call means, in the domain's words.

Every call is recorded as an exchange (CallSent, then CallAnswered, CallFailed
or CallTimedOut). What an answer means for a reservation or the Local
Authorization List is recorded beside it, as an event named for what happened:

| call, answer | event beside the exchange |
|---|---|
| ReserveNow, Accepted | ReservationAccepted(reservation_id, accepted_at) |
| ReserveNow, another status | ReservationRefused(reservation_id, reply_status, refused_at) |
| ReserveNow, a CALLERROR but ConnectionLost | ReservationRefused(reply_status=the error code) |
| CancelReservation, Accepted | ReservationCancelled(reservation_id, reason, cancelled_at) |
| GetLocalListVersion | LocalListVersionReported(list_version, reported_at) |
| SendLocalList, Accepted | LocalListUpdated(list_version, update_type, entries, updated_at) |
| ChangeConfiguration SecurityProfile, Accepted | SecurityProfileRaised(profile, raised_at) |
| GetLog | LogRequestAnswered(request_id, log_type, status, filename, answered_at) |
| SignedUpdateFirmware | SignedFirmwareUpdateAnswered(request_id, status, answered_at) |
| SignedUpdateFirmware, a CALLERROR but ConnectionLost | SignedFirmwareUpdateFailed(request_id, error_code, failed_at) |

(ConnectionLost, our own code for a connection lost before the answer, is no
refusal: the ReserveNow may have arrived, so the reservation stays Pending.
The reason of a cancellation by CancelReservation is "CancelReservation".)

This module is the one place that meaning is worked out, for new answers and
for old ones alike:

- ChargePoint.record_call_answer and record_call_error record what of_answer
  and of_error say (``record``), where it still applies (``still_applies``:
  an answer to a reservation that no longer waits for one changes nothing);
- CallAnswered and CallFailed events stored before these events existed
  (class_version 1) are upcast with what they implied, under ``implied``
  (``imply_answer``, ``imply_error``; domain/chargepoint_events.py). The
  aggregate applies those as it replays them (``apply_implied``), and the
  read models take them as the events they imply (``implied_events``, which
  is ChargePoint.implied_events), so no consumer looks into a reply.

The aggregate is known here only as what these need of it (``Answered``):
this module does not import domain/chargepoint.py. An outcome event is the
aggregate's own (ReservationAccepted, ...) or a class the security extension
declared under the aggregate's topic (domain/security_profile.py, domain/logs.py, domain/signed_firmware.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol, Sequence

from eventsourcing.utils import resolve_topic

from domain import reservation_book

Payload = dict[str, Any]
Outcome = tuple[str, Payload]  # an event's name and its fields

IMPLIED = "implied"  # what an answer stored as class_version 1 implied, added as it is read


class Answered(Protocol):
    """The aggregate an answer was recorded on: its outcome events are its own, by name."""

    reservations: reservation_book.Book

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...


def record(aggregate: Answered, outcomes: list[Outcome]) -> None:
    """Triggers, beside the exchange just recorded, the event of each outcome that still applies."""
    for name, fields in outcomes:
        if still_applies((name, fields), aggregate.reservations):
            aggregate.trigger_event(event_class(type(aggregate), name), **fields)


def apply_implied(aggregate: Answered, implied: Sequence[Outcome], received_at: datetime) -> None:
    """Replaying an old answer: its outcomes apply as if recorded beside it (the answer is version + 1)."""
    for outcome in implied:
        if still_applies(outcome, aggregate.reservations):
            outcome_event(type(aggregate), aggregate.id, aggregate.version + 1, received_at, outcome).apply(aggregate)


def implied_events(aggregate_class: type[Any], answer: Any) -> list[Any]:
    """The outcome events an answer stored as class_version 1 implied (none for
    any other event), for the read models; see domain/chargepoint_events.py."""
    return [outcome_event(aggregate_class, answer.originator_id, answer.originator_version, answer.received_at, outcome)
            for outcome in getattr(answer, IMPLIED, ())]


def outcome_event(aggregate_class: type[Any], originator_id: str, version: int, at: datetime, outcome: Outcome) -> Any:
    """The event an outcome names. Never stored: it stands for what the answer at `version` implied."""
    name, fields = outcome
    return event_class(aggregate_class, name)(originator_id=originator_id, originator_version=version, timestamp=at,
                                              **fields)


def event_class(aggregate_class: type[Any], name: str) -> Any:
    """The event class an outcome names: the aggregate's own, else one declared under its topic."""
    own = getattr(aggregate_class, name, None)
    return own if own is not None else resolve_topic(f"{aggregate_class.TOPIC}.{name}")


def of_answer(action: str, request: Payload, reply: Payload, received_at: datetime) -> list[Outcome]:
    """What the CALLRESULT ``reply`` to ``action`` means."""
    meaning = MEANING_OF_ANSWERS.get(action)
    return meaning(request, reply, received_at) if meaning is not None else []


def _reserve_now(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    if reply["status"] == reservation_book.ACCEPTED:
        return [("ReservationAccepted", {"reservation_id": request["reservationId"], "accepted_at": at})]
    return [_refused(request, reply["status"], at)]


def _cancel_reservation(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    if reply["status"] != "Accepted":
        return []
    return [("ReservationCancelled", {"reservation_id": request["reservationId"], "reason": "CancelReservation",
                                      "cancelled_at": at})]


def _get_local_list_version(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    return [("LocalListVersionReported", {"list_version": reply["listVersion"], "reported_at": at})]


def _send_local_list(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    # Failed, NotSupported and VersionMismatch leave the list and its version as they were.
    if reply["status"] != "Accepted":
        return []
    return [("LocalListUpdated", {"list_version": request["listVersion"], "update_type": request["updateType"],
                                  "entries": request.get("localAuthorizationList", []), "updated_at": at})]


def _change_configuration(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    # Whitepaper section 2.4: the charge point accepted a higher SecurityProfile; the lower ones are
    # refused from now on (calls that would lower it are never sent: security_profile.py).
    if str(request.get("key", "")).lower() != "securityprofile" or reply.get("status") != "Accepted":
        return []
    value = str(request.get("value", ""))
    if value not in ("0", "1", "2", "3"):
        return []
    return [("SecurityProfileRaised", {"profile": int(value), "raised_at": at})]
def _get_log(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    return [("LogRequestAnswered", {"request_id": request["requestId"], "log_type": request["logType"],
                                    "status": reply["status"], "filename": reply.get("filename"), "answered_at": at})]


def _signed_update_firmware(request: Payload, reply: Payload, at: datetime) -> list[Outcome]:
    return [("SignedFirmwareUpdateAnswered", {"request_id": request["requestId"], "status": reply["status"],
                                              "answered_at": at})]


MEANING_OF_ANSWERS: dict[str, Callable[[Payload, Payload, datetime], list[Outcome]]] = {
    "ReserveNow": _reserve_now,
    "CancelReservation": _cancel_reservation,
    "GetLocalListVersion": _get_local_list_version,
    "SendLocalList": _send_local_list,
    "ChangeConfiguration": _change_configuration,
    "GetLog": _get_log,
    "SignedUpdateFirmware": _signed_update_firmware,
}


def of_error(action: str, request: Payload, error_code: str, received_at: datetime) -> list[Outcome]:
    """What a CALLERROR to ``action`` means."""
    # A connection lost before the answer is no refusal: the call may have arrived.
    if error_code == reservation_book.UNDELIVERED:
        return []
    if action == "ReserveNow":
        return [_refused(request, error_code, received_at)]
    if action == "SignedUpdateFirmware":
        return [("SignedFirmwareUpdateFailed", {"request_id": request["requestId"], "error_code": error_code,
                                                "failed_at": received_at})]
    return []


def still_applies(outcome: Outcome, book: reservation_book.Book) -> bool:
    """Whether an outcome changes anything: a reservation's answer only while
    it waits for one (Pending), a cancellation only while it is open."""
    name, fields = outcome
    if "reservation_id" not in fields:
        return True
    reservation = book.get(fields["reservation_id"])
    if reservation is None:
        return False
    if name == "ReservationCancelled":
        return reservation["status"] in reservation_book.OPEN
    return bool(reservation["status"] == reservation_book.PENDING)


def imply_answer(state: Payload) -> None:
    """Upcasts a CallAnswered stored before outcome events existed."""
    _imply(state, of_answer(state["action"], state["request"], state["reply"], state["received_at"]))


def imply_error(state: Payload) -> None:
    """Upcasts a CallFailed stored before outcome events existed."""
    _imply(state, of_error(state["action"], state["request"], state["error_code"], state["received_at"]))


def _imply(state: Payload, outcomes: list[Outcome]) -> None:
    if outcomes:  # most answers imply nothing; their history stays as it was
        state[IMPLIED] = outcomes


def _refused(request: Payload, reply_status: str, received_at: datetime) -> Outcome:
    return ("ReservationRefused", {"reservation_id": request["reservationId"], "reply_status": reply_status,
                                   "refused_at": received_at})
