"""What the central system can hold (adapters/ocpp/admissibility.py): the edges of the date-time range."""

from __future__ import annotations

import pytest

from adapters.ocpp.admissibility import refuse_inadmissible
from adapters.ocpp.framing import OcppError
from adapters.ocpp.schemas import Schemas

SCHEMAS = Schemas()


def start(timestamp: str) -> dict[str, object]:
    return {"connectorId": 1, "idTag": "EDGE", "meterStart": 0, "timestamp": timestamp}


@pytest.mark.parametrize("timestamp", [
    "0001-01-02T00:00:00Z", "0001-01-02T10:00:00+10:00", "9999-12-30T23:59:59.999999Z",
    "9999-12-30T09:59:59-14:00", "2016-12-31T23:59:60Z",
])
def test_a_date_time_within_the_range_in_utc_is_admitted(timestamp: str) -> None:
    refuse_inadmissible("StartTransaction", start(timestamp), SCHEMAS)


@pytest.mark.parametrize("timestamp", [
    "0001-01-01T23:59:59.999999Z", "0001-01-02T10:00:00+10:01", "9999-12-31T00:00:00Z",
    "9999-12-30T10:00:00-14:00", "9999-12-30T23:59:60Z",
])
def test_a_date_time_beyond_the_range_in_utc_is_refused(timestamp: str) -> None:
    with pytest.raises(OcppError) as refused:
        refuse_inadmissible("StartTransaction", start(timestamp), SCHEMAS)
    assert refused.value.code == "PropertyConstraintViolation"
    assert refused.value.details == {"path": "timestamp"}


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    refuse_inadmissible("DataTransfer", {"vendorId": "Acme", "data": "\\u0000"}, SCHEMAS)
