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
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from adapters.ocpp.framing import OcppError
from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS, CHARGE_POINT_ACTIONS, Schemas, fast_check, inline_definitions

SCHEMAS = Schemas()
NAMES = sorted(
    {action for action in CHARGE_POINT_ACTIONS | CENTRAL_SYSTEM_ACTIONS}
    | {f"{action}Response" for action in CHARGE_POINT_ACTIONS | CENTRAL_SYSTEM_ACTIONS}
)

# The two schemas with a "uri" format (OCPP 1.6: GetDiagnostics and UpdateFirmware's location), which
# jsonschema-rs judges more loosely: fastjsonschema alone decides them.
WITHOUT_FAST_CHECK = {"GetDiagnostics", "UpdateFirmware"}
WITH_FAST_CHECK = [name for name in NAMES if name not in WITHOUT_FAST_CHECK]

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
        if limit > 1000:  # hypothesis draws no text that long (the security extension's PEM fields: 5500, 10000)
            choices.append(st.integers(limit - 2, limit + 2).map(lambda size: "x" * size))
        else:
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


def fitting(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit the schema node: so that accepted payloads are compared too, not only rejected ones."""
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.sampled_from(DATE_TIMES[:3])
        if schema.get("format") == "uri":
            return st.sampled_from(URIS[:2])
        return st.text("AZaz09-", max_size=min(schema.get("maxLength", 20), 20))
    if kind == "integer":
        return st.integers(0, 1000)
    if kind == "number":
        return st.one_of(st.integers(0, 1000), st.floats(0, 1000))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(fitting(schema.get("items", {})), min_size=1, max_size=2)
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries({n: fitting(sub) for n, sub in properties.items() if n in required},
                                 optional={n: fitting(sub) for n, sub in properties.items() if n not in required})


def objects(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    fields = {name: near(sub, depth) for name, sub in properties.items()}
    required = set(schema.get("required", []))
    # Each required property is usually there, optional ones sometimes; extras rarely.
    present = st.fixed_dictionaries({}, optional={**fields, "extra": ANYTHING})
    complete = st.fixed_dictionaries({n: s for n, s in fields.items() if n in required},
                                     optional={n: s for n, s in fields.items() if n not in required})
    if depth == 0:
        return st.one_of(complete, complete, present, fitting(schema))
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


def test_only_the_schemas_with_a_uri_lack_a_fast_check() -> None:
    assert {name for name in NAMES if fast_check(SCHEMAS.schema(name)) is None} == WITHOUT_FAST_CHECK


@pytest.mark.parametrize("name", WITH_FAST_CHECK)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_check_is_never_looser(name: str, data: st.DataObject) -> None:
    fast = fast_check(SCHEMAS.schema(name))
    assert fast is not None
    payload = data.draw(objects(inline_definitions(SCHEMAS.schema(name))))
    if fast(payload):
        assert fastjsonschema_accepts(reference(name), payload), payload


@pytest.mark.parametrize("name", WITH_FAST_CHECK)
def test_the_fast_check_accepts_payloads_drawn_near_each_schema(name: str) -> None:
    # So the test above compares verdicts on accepted payloads, not only on rejected ones.
    fast = fast_check(SCHEMAS.schema(name))
    assert fast is not None
    accepted = find(objects(inline_definitions(SCHEMAS.schema(name))), fast,
                    settings=settings(max_examples=1000, database=None, phases=[Phase.generate],
                                      suppress_health_check=[HealthCheck.too_slow]))
    assert fastjsonschema_accepts(reference(name), accepted), accepted


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
