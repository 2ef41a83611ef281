"""Reading OCPP date-times (domain/timestamps.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.timestamps import parse_ocpp_time


def test_a_leap_second_is_the_first_instant_of_the_next_minute() -> None:
    assert parse_ocpp_time("2016-12-31T23:59:60Z") == datetime(2017, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["0000-01-01T00:00:00Z", "9999-12-31T23:59:60Z"])
def test_a_date_time_python_cannot_hold_is_a_value_error(text: str) -> None:
    # Not an OverflowError: callers that check what they read catch ValueError.
    with pytest.raises(ValueError):
        parse_ocpp_time(text)
