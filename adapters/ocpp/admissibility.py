"""What the central system can hold: checked after the schema, before anything is recorded.

A payload can satisfy the OCPP 1.6 schemas and still carry a value no store
holds. Answering it and failing later would lose an acknowledged message
(the read models refuse it) or answer every retry with an InternalError, so
such a value is refused up front with PropertyConstraintViolation, naming
the field, and nothing is recorded:

- a date-time whose UTC instant lies outside what both stores give back as
  a Python datetime (years 1 to 9999; PostgreSQL reads a timestamptz in the
  session's time zone, so a day's margin at either end), or that Python
  cannot read at all (year 0, a leap second at the end of year 9999);
- a NUL character in any string: PostgreSQL's text and jsonb refuse it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Iterator

import orjson

from adapters.ocpp.framing import OcppError, Payload
from adapters.ocpp.schemas import SchemaPath, Schemas
from domain.timestamps import parse_ocpp_time

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
HOLDABLE = f"{EARLIEST.date().isoformat()} to {LATEST.date().isoformat()} UTC"
NUL_IN_JSON = b"\\u0000"  # how orjson writes a NUL inside a string


def refuse_inadmissible(action: str, payload: Payload, schemas: Schemas, encoded: bytes | None = None) -> None:
    """Raises OcppError (PropertyConstraintViolation) for a schema-valid value the central system cannot hold.

    ``encoded``: the payload's JSON as the caller already made it (any key order, possibly inside a
    larger document), so the NUL search costs no second encoding.
    """
    for path in schemas.date_time_paths(action):
        if any(_date_time_problem(text) is not None for text in _values(payload, path)):
            # Rare: only now are the fields named, to say which one.
            for where, text in _values_at(payload, path, ""):
                problem = _date_time_problem(text)
                if problem is not None:
                    raise OcppError("PropertyConstraintViolation", f"{where} {text!r} {problem}", {"path": where})
    # The common case costs one C call: no escaped NUL in the whole payload.
    if NUL_IN_JSON in (encoded if encoded is not None else orjson.dumps(payload)):
        nul_at = next(_strings_with_nul(payload, ""), None)
        if nul_at is not None:
            raise OcppError("PropertyConstraintViolation", f"{nul_at} contains a NUL character, "
                            "which the central system cannot store", {"path": nul_at})


def _date_time_problem(text: Any) -> str | None:
    try:
        moment = parse_ocpp_time(text)
    except (ValueError, OverflowError):
        return "is not a date-time the central system can hold"
    # Compared as aware datetimes: no conversion that could itself overflow.
    if not EARLIEST <= moment <= LATEST:
        return f"is outside the date-times the central system can hold ({HOLDABLE})"
    return None


def _values(payload: Payload, path: SchemaPath) -> list[Any]:
    """The values at ``path``, unnamed: the common case, where every one is fine."""
    values: list[Any] = [payload]
    for step in path:
        if step is None:
            values = [item for value in values if isinstance(value, list) for item in value]
        else:
            values = [value[step] for value in values if isinstance(value, dict) and step in value]
    return values


def _values_at(value: Any, path: SchemaPath, where: str) -> Iterator[tuple[str, Any]]:
    if not path:
        yield where, value
        return
    step, rest = path[0], path[1:]
    if step is None:  # every item of an array
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _values_at(item, rest, f"{where}[{index}]")
    elif isinstance(value, dict) and step in value:
        yield from _values_at(value[step], rest, f"{where}.{step}" if where else step)


def _strings_with_nul(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if "\x00" in str(key):
                yield inner
            yield from _strings_with_nul(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings_with_nul(item, f"{where}[{index}]")
