"""OCPP date-time text: what we send and how we read what we receive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def format_ocpp_time(moment: datetime) -> str:
    """UTC with millisecond precision and a 'Z', as OCPP-J peers expect."""
    # isoformat is C code; the offset it writes is always "+00:00" here.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_ocpp_time(text: str) -> datetime:
    """Reads an RFC 3339 date-time; a value without offset is taken as UTC.

    RFC 3339 allows a leap second (second 60), which Python's datetime cannot
    hold: it is read as the first instant of the next minute. A date-time
    Python cannot hold (year 0, past year 9999) raises ValueError.
    """
    text = text.replace("z", "Z")
    leap = len(text) >= 19 and text[16] == ":" and text[17:19] == "60"
    if leap:
        text = text[:17] + "59" + text[19:]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if leap:
        try:
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
        except OverflowError:  # the leap second that would end year 9999
            raise ValueError(f"{text!r} is beyond the last date-time Python can hold") from None
    return moment
