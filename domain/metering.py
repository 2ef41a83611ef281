"""Reading energy out of OCPP sampled values (OCPP 1.6 section 7.43).

Sampled values are kept in the events exactly as received; this module only
derives the energy register in Wh, because billing works in Wh and meters
report either Wh or kWh.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

ENERGY_REGISTER = "Energy.Active.Import.Register"
UNIT_FACTORS = {"Wh": Decimal(1), "kWh": Decimal(1000)}
# As for meterStart and meterStop (session_totals.py): a register beyond a
# signed 64-bit value is no meter's reading.
HIGHEST_REGISTER = 2**63 - 1
REGISTER_DIGITS = len(str(HIGHEST_REGISTER))  # 19: any value with more integer digits is beyond it


def energy_register_wh(sampled_value: dict[str, Any]) -> Decimal | None:
    """The import register of one sampled value in Wh, or None if it is not one.

    The measurand defaults to the import register and the unit to Wh (7.43);
    per-phase values and signed data are not the total register.
    """
    if sampled_value.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
        return None
    if sampled_value.get("phase") or sampled_value.get("format") == "SignedData":
        return None
    factor = UNIT_FACTORS.get(sampled_value.get("unit", "Wh"))
    if factor is None:
        return None
    try:
        value = Decimal(sampled_value["value"])
    except (InvalidOperation, KeyError, TypeError):
        return None
    # Not a finite number, or beyond any meter's register: kept as received, not energy.
    # (Checked before multiplying: 1e1000000 * 1000 overflows the decimal context.)
    if not value.is_finite() or value.adjusted() >= REGISTER_DIGITS:
        return None
    wh = value * factor
    return wh if abs(wh) <= HIGHEST_REGISTER else None


def energy_readings(meter_values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every energy register reading in a MeterValues or transactionData list.

    Returns ``[{"timestamp", "energyWh", "context"}]`` in the order received.
    """
    readings = []
    for meter_value in meter_values:
        for sampled_value in meter_value.get("sampledValue", []):
            wh = energy_register_wh(sampled_value)
            if wh is not None:
                readings.append(
                    {
                        "timestamp": meter_value["timestamp"],
                        "energyWh": wh,
                        "context": sampled_value.get("context", "Sample.Periodic"),
                    }
                )
    return readings
