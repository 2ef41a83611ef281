"""The fast schema check (jsonschema-rs) never accepts what fastjsonschema rejects.

Schemas.validate_request trusts jsonschema-rs's "valid" where it has one and
asks fastjsonschema otherwise, so the only disagreement that would change
what we accept is jsonschema-rs being looser. Payloads are drawn near each
official schema: right and wrong types, enum values and near misses, strings
around maxLength, date-times and URIs well and badly formed, missing and
extra properties.
"""

from __future__ import annotations

import functools
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.ocpp.framing import OcppError
from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS, CHARGE_POINT_ACTIONS, Schemas, fast_check

SCHEMAS = Schemas()
NAMES = sorted(
    {action for action in CHARGE_POINT_ACTIONS | CENTRAL_SYSTEM_ACTIONS}
    | {f"{action}Response" for action in CHARGE_POINT_ACTIONS | CENTRAL_SYSTEM_ACTIONS}
)

DATE_TIMES = [
    "2026-11-25T16:00:00Z", "2026-11-25T16:00:00.123Z", "2026-11-25T16:00:00+01:00", "2026-11-25t16:00:00z",
    "2026-11-25T16:00:00", "2026-11-25 16:00:00Z", "2026-11-25T16:00:60Z", "2026-02-30T16:00:00Z",
    "2026-11-25T24:00:00Z", "2026-11-25T16:00:00+0100", "2026-11-25", "not a time", "",
]
URIS = ["ftp://host/fw.bin", "https://host/x", "x:", "git+ssh://host/fw", "x-ftp://host/fw", "no scheme", ""]
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3), st.sampled_from(DATE_TIMES), st.just([]), st.just({}),
)


def near(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that fit the schema node, nearly fit it, or are anything at all."""
    kind = schema.get("type")
    choices: list[st.SearchStrategy[Any]] = [ANYTHING]
    if "enum" in schema:
        values = list(schema["enum"])
        choices.append(st.sampled_from(values + [v.lower() for v in values if isinstance(v, str)] + ["Other"]))
    elif kind == "string":
        limit = schema.get("maxLength", 50)
        choices.append(st.text(min_size=max(0, limit - 2), max_size=limit + 2))
        if schema.get("format") == "date-time":
            choices.append(st.sampled_from(DATE_TIMES))
        if schema.get("format") == "uri":
            choices.append(st.sampled_from(URIS))
    elif kind == "integer":
        choices.append(st.one_of(st.integers(-(2**70), 2**70), st.just(1.0), st.just(True)))
    elif kind == "number":
        choices.append(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
    elif kind == "array" and depth < 4:
        items = schema.get("items", {})
        choices.append(st.lists(near(items, depth + 1), max_size=3))
    elif kind == "object" and depth < 4:
        choices.append(objects(schema, depth + 1))
    return st.one_of(*choices)


def objects(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    fields = {name: near(sub, depth) for name, sub in properties.items()}
    required = set(schema.get("required", []))
    # Each required property is usually there, optional ones sometimes; extras rarely.
    present = st.fixed_dictionaries({}, optional={**fields, "extra": ANYTHING})
    complete = st.fixed_dictionaries({n: s for n, s in fields.items() if n in required},
                                     optional={n: s for n, s in fields.items() if n not in required})
    return st.one_of(complete, complete, present)


@functools.cache
def reference(name: str) -> Any:
    return fastjsonschema.compile(SCHEMAS.schema(name))


def fastjsonschema_accepts(validator: Any, payload: Any) -> bool:
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_check_is_never_looser(name: str, data: st.DataObject) -> None:
    fast = fast_check(SCHEMAS.schema(name))
    if fast is None:
        return  # fastjsonschema alone decides this schema
    payload = data.draw(objects(SCHEMAS.schema(name)))
    if fast(payload):
        assert fastjsonschema_accepts(reference(name), payload), payload


@pytest.mark.parametrize("payload, accepted", [
    ({"currentTime": "2026-11-25T16:00:00.123Z"}, True),
    # jsonschema-rs rejects a leap second and a colon-less offset; fastjsonschema
    # accepts both, and it has the last word, as before the fast path existed.
    ({"currentTime": "2026-12-31T23:59:60Z"}, True),
    ({"currentTime": "2026-11-25T16:00:00+0100"}, True),
    ({"currentTime": "2026-11-25 16:00:00Z"}, False),
    ({}, False),
])
def test_validation_keeps_fastjsonschemas_verdict(payload: dict[str, Any], accepted: bool) -> None:
    try:
        SCHEMAS.validate_response("Heartbeat", payload)
    except OcppError:
        assert not accepted
    else:
        assert accepted


@pytest.mark.parametrize("location, accepted", [
    ("ftp://example.com/fw.bin", True),
    # jsonschema-rs would take these; fastjsonschema's "uri" does not.
    ("x:", False),
    ("git+ssh://host/fw.bin", False),
])
def test_a_uri_is_judged_as_before(location: str, accepted: bool) -> None:
    payload = {"location": location, "retrieveDate": "2026-11-25T16:00:00Z"}
    try:
        SCHEMAS.validate_request("UpdateFirmware", payload)
    except OcppError:
        assert not accepted
    else:
        assert accepted
