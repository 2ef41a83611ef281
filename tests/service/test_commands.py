"""Commands (adapters/service/commands.py): operators' calls, checked by the domain, sent, followed.

The session is a fake that the test answers (tests/service/fakes.py); what
the domain records before sending is committed for real.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from adapters.service.chargepoints import ChargePoints
from adapters.service.commands import CommandRefused, Commands
from adapters.service.passwords import PendingKeys, verify_password
from adapters.service.sessions import CallTimeout, NotConnected, Sessions
from adapters.store import EventStore
from domain.timestamps import format_ocpp_time
from tests.service.conftest import NOW
from tests.service.fakes import FakeSession, FrozenClock, within_safety
from tests.stories import event_names

CP = "CP-1"
PASSWORD = "Correct-Horse-42"
NEW_PASSWORD = "Battery-Staple-77"
# An AuthorizationKey is its password's hexadecimal form (OCPP 1.6 Security Whitepaper).
NEW_KEY = {"key": "AuthorizationKey", "value": NEW_PASSWORD.encode().hex()}


@pytest.fixture
def commands(charge_points: ChargePoints, sessions: Sessions, pending_keys: PendingKeys, store: EventStore,
             clock: FrozenClock) -> Commands:
    return Commands(charge_points, sessions, pending_keys, store.side, clock)


@pytest.fixture
async def session(charge_points: ChargePoints, sessions: Sessions) -> FakeSession:
    """A registered charge point, connected; it has a password."""
    await charge_points.register(CP, description="", password=PASSWORD)
    connected = FakeSession(CP, charge_points)
    sessions.add(connected)
    return connected


def tx_profile(transaction_id: int) -> dict[str, Any]:
    return {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative", "transactionId": transaction_id,
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]},
    }


def reserve_now(expires_in: timedelta) -> dict[str, Any]:
    expiry_date = format_ocpp_time(NOW + expires_in)
    return {"connectorId": 1, "expiryDate": expiry_date, "idTag": "TAG-1", "reservationId": 7}


async def test_a_command_to_a_charge_point_without_a_session_is_not_connected(
    commands: Commands, charge_points: ChargePoints
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a charge point that is not connected

    with pytest.raises(NotConnected):  # when, then
        await commands.send(CP, "Reset", {"type": "Soft"})
    assert commands.pending(CP) == 0


REFUSED = {
    "a TxProfile for no running transaction": (
        "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": tx_profile(transaction_id=99)},
    ),
    "a reservation that has already expired": ("ReserveNow", reserve_now(timedelta(minutes=-1))),
}


@pytest.mark.parametrize("action, payload", REFUSED.values(), ids=REFUSED.keys())
async def test_a_call_the_domain_refuses_is_not_sent(
    commands: Commands, session: FakeSession, store: EventStore, action: str, payload: dict[str, Any]
) -> None:
    with pytest.raises(CommandRefused) as refused:  # when
        await within_safety(commands.send(CP, action, payload))

    assert refused.value.action == action  # then nothing went out and nothing was recorded
    assert session.calls == []
    assert event_names(store, CP) == ["Registered", "CredentialsChanged"]


async def test_a_reservation_is_recorded_before_its_call_goes_out(
    commands: Commands, session: FakeSession, store: EventStore
) -> None:
    request = reserve_now(timedelta(hours=1))  # given a reservation an hour ahead

    sending = asyncio.ensure_future(commands.send(CP, "ReserveNow", request))  # when
    outstanding = await session.next_unanswered()

    assert (outstanding.action, outstanding.payload) == ("ReserveNow", request)  # then, while it is out
    assert event_names(store, CP)[-1] == "ReservationRequested"
    outstanding.reply.set_result({"status": "Accepted"})
    assert await within_safety(sending) == {"status": "Accepted"}


async def test_an_accepted_authorization_key_becomes_the_password(
    commands: Commands, session: FakeSession, charge_points: ChargePoints, pending_keys: PendingKeys,
    store: EventStore,
) -> None:
    sending = asyncio.ensure_future(commands.send(CP, "ChangeConfiguration", NEW_KEY))  # given the new key sent
    outstanding = await session.next_unanswered()
    [pending] = pending_keys.of(CP)  # pending while the call is out, so a reconnect with it is admitted
    assert verify_password(NEW_PASSWORD, pending)

    outstanding.reply.set_result({"status": "Accepted"})  # when the charge point accepts it
    await within_safety(sending)

    stored = await charge_points.password_hash(CP)  # then
    assert stored is not None and verify_password(NEW_PASSWORD, stored) and not verify_password(PASSWORD, stored)
    *_, changed = store.history(CP)
    assert type(changed).__name__ == "CredentialsChanged" and changed.reason == "AuthorizationKey accepted"
    assert pending_keys.of(CP) == []


async def test_a_rejected_authorization_key_leaves_the_password_as_it_was(
    commands: Commands, charge_points: ChargePoints, sessions: Sessions, pending_keys: PendingKeys,
    store: EventStore,
) -> None:
    await charge_points.register(CP, description="", password=PASSWORD)  # given a charge point that refuses it
    sessions.add(FakeSession(CP, charge_points, answers={"ChangeConfiguration": {"status": "Rejected"}}))

    reply = await commands.send(CP, "ChangeConfiguration", NEW_KEY)  # when

    assert reply == {"status": "Rejected"}  # then
    stored = await charge_points.password_hash(CP)
    assert stored is not None and verify_password(PASSWORD, stored) and not verify_password(NEW_PASSWORD, stored)
    assert event_names(store, CP) == ["Registered", "CredentialsChanged"]
    assert pending_keys.of(CP) == []


async def test_a_command_is_pending_while_its_call_is_out(commands: Commands, session: FakeSession) -> None:
    sending = asyncio.ensure_future(commands.send(CP, "Reset", {"type": "Soft"}))  # when a call is out
    outstanding = await session.next_unanswered()

    assert commands.pending(CP) == 1  # then it is pending
    outstanding.reply.set_result({"status": "Accepted"})
    assert await within_safety(sending) == {"status": "Accepted"}
    assert commands.pending(CP) == 0  # until it is answered


async def test_a_command_whose_call_failed_is_no_longer_pending(
    commands: Commands, charge_points: ChargePoints, sessions: Sessions
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a charge point that never answers
    sessions.add(FakeSession(CP, charge_points, answers={"Reset": CallTimeout("no answer")}))

    with pytest.raises(CallTimeout):  # when
        await commands.send(CP, "Reset", {"type": "Soft"})

    assert commands.pending(CP) == 0  # then


async def test_each_reservation_gets_an_id_of_its_own(commands: Commands) -> None:
    ids = [await commands.allocate_reservation_id() for _ in range(3)]

    assert len(set(ids)) == 3
