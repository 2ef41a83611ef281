"""OCPP date-time text: what we send and how we read what we receive."""

from __future__ import annotations

from datetime import UTC, datetime


def format_ocpp_time(moment: datetime) -> str:
    """UTC with millisecond precision and a 'Z', as OCPP-J peers expect."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ocpp_time(text: str) -> datetime:
    """Reads an RFC 3339 date-time; a value without offset is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
