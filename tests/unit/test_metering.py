"""Energy out of OCPP sampled values (domain/metering.py, OCPP 1.6 section 7.43)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.metering import ENERGY_REGISTER, energy_readings, energy_register_wh


def test_a_kwh_register_reading_is_converted_to_wh() -> None:
    assert energy_register_wh({"value": "12.345", "unit": "kWh", "measurand": ENERGY_REGISTER}) == Decimal(12345)


def test_the_measurand_defaults_to_the_import_register_and_the_unit_to_wh() -> None:
    assert energy_register_wh({"value": "12345"}) == Decimal(12345)


def test_a_wh_reading_keeps_its_fraction() -> None:
    assert energy_register_wh({"value": "0.5", "unit": "Wh"}) == Decimal("0.5")


@pytest.mark.parametrize(
    "sampled_value",
    [
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "100", "measurand": "Energy.Active.Export.Register"},
        {"value": "4000", "phase": "L1"},  # a phase is part of the total, not the total
        {"value": "c2lnbmVk", "format": "SignedData"},
        {"value": "3", "unit": "kvarh"},
        {"value": "twelve"},
        {"value": "12,5", "unit": "kWh"},
        {"value": "NaN"},
        {"value": "Infinity"},
        {"unit": "Wh"},
        {"value": None},
        {"value": "1e1000000"},  # beyond the decimal context: it must not raise
        {"value": "1e999999", "unit": "kWh"},
        {"value": "9223372036854775808"},  # beyond any 64-bit register
        {"value": "9300000000000000", "unit": "kWh"},
    ],
    ids=["power", "export", "per phase", "signed", "reactive unit", "words", "decimal comma", "nan",
         "infinity", "no value", "null value", "beyond the context", "beyond the context in kWh",
         "beyond a register", "beyond a register in kWh"],
)
def test_what_is_not_the_import_register_in_a_known_unit_is_no_reading(sampled_value: dict[str, Any]) -> None:
    assert energy_register_wh(sampled_value) is None


def test_readings_keep_their_order_timestamp_and_context() -> None:
    meter_values: list[dict[str, Any]] = [  # given
        {"timestamp": "2024-03-04T09:00:00Z", "sampledValue": [
            {"value": "1.000", "unit": "kWh", "context": "Transaction.Begin"},
            {"value": "230", "measurand": "Voltage", "unit": "V"},
        ]},
        {"timestamp": "2024-03-04T09:15:00Z"},  # sampledValue missing: nothing to read
        {"timestamp": "2024-03-04T09:30:00Z", "sampledValue": [{"value": "1750"}]},
    ]

    readings = energy_readings(meter_values)  # when

    assert readings == [  # then
        {"timestamp": "2024-03-04T09:00:00Z", "energyWh": Decimal(1000), "context": "Transaction.Begin"},
        {"timestamp": "2024-03-04T09:30:00Z", "energyWh": Decimal(1750), "context": "Sample.Periodic"},
    ]


def test_no_meter_values_are_no_readings() -> None:
    assert energy_readings([]) == []


@settings(derandomize=True, database=None)  # the same examples every run
@given(st.decimals(min_value=0, max_value=10**9, places=3))
def test_the_same_energy_in_kwh_and_in_wh_reads_the_same(kwh: Decimal) -> None:
    in_kwh = energy_register_wh({"value": str(kwh), "unit": "kWh"})
    in_wh = energy_register_wh({"value": str(kwh * 1000), "unit": "Wh"})

    assert in_kwh == in_wh == kwh * 1000
