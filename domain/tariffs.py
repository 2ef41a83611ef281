"""Tariffs and the cost of a charging session.

Operators set a default tariff and per-charge-point tariffs; each setting is
an event with the moment it takes effect, so the tariff in force when a
session started can always be found again. Money is Decimal throughout.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from eventsourcing.domain import BaseAggregate, CanInitAggregate, event

from domain.event_bases import TextIdEvent

TARIFF_BOOK_ID = "tariffs"
DEFAULT_SCOPE = "default"
CENT = Decimal("0.01")
PRICE_FIELDS = ("pricePerKwh", "pricePerMinute", "sessionFee")


class TariffRejected(ValueError):
    """An operator's tariff that cannot be used for billing."""


def parse_tariff(body: dict[str, Any]) -> dict[str, Any]:
    """A tariff from the API body: prices as exact decimal strings, a currency."""
    tariff: dict[str, Any] = {}
    for name in PRICE_FIELDS:
        raw = body.get(name, "0")
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise TariffRejected(f"{name} must be a decimal number")
        try:
            # Floats go through str so 0.3 means 0.3, not its binary neighbour.
            value = Decimal(str(raw))
        except InvalidOperation:
            raise TariffRejected(f"{name} must be a decimal number") from None
        if not value.is_finite() or value < 0:
            raise TariffRejected(f"{name} must be a non-negative number")
        tariff[name] = str(value)
    currency = body.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise TariffRejected("currency must be a three-letter ISO 4217 code")
    tariff["currency"] = currency.upper()
    return tariff


def session_cost(tariff: dict[str, Any], energy_wh: Decimal | int, duration_seconds: Decimal | int) -> Decimal:
    """Session fee + energy x price per kWh + minutes x price per minute, to the cent.

    Exact decimal arithmetic; one rounding at the end (half to even), so the
    parts of a bill never drift from its total.
    """
    energy_kwh = Decimal(energy_wh) / Decimal(1000)
    minutes = Decimal(duration_seconds) / Decimal(60)
    cost = (
        Decimal(tariff["sessionFee"])
        + energy_kwh * Decimal(tariff["pricePerKwh"])
        + minutes * Decimal(tariff["pricePerMinute"])
    )
    return cost.quantize(CENT, rounding=ROUND_HALF_EVEN)


class TariffBook(BaseAggregate[str]):
    TOPIC = "ampledger:TariffBook"

    class Event(TextIdEvent):
        TOPIC = "ampledger:TariffBook.Event"

    class Created(Event, CanInitAggregate[str]):
        TOPIC = "ampledger:TariffBook.Created"
        originator_topic: str

    def __init__(self, id: str) -> None:  # noqa: A002 - the library's name
        self.current: dict[str, dict[str, Any]] = {}

    @event("TariffSet", topic="ampledger:TariffBook.TariffSet")
    def set_tariff(self, scope: str, tariff: dict[str, Any], effective_from: datetime) -> None:
        self.current[scope] = dict(tariff, effectiveFrom=effective_from)
