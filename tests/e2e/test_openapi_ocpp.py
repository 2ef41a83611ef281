"""The OpenAPI document a real server serves, against the official OCPP 1.6
JSON schemas of the `ocpp` package.

The expected values come from outside our code: the schema files the package
ships (read with importlib.resources) and the direction of each action as
OCPP 1.6 (section 3.3, "Operations initiated by ...") and the Security
Whitepaper define it. Nothing of adapters/ is imported.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, AsyncIterator

import pytest

from tests.ocpp_client import Operator, shared_server

server = shared_server()

OCPP_SCHEMAS = resources.files("ocpp") / "v16" / "schemas"
COMMANDS = "/api/chargepoints/{chargePointId}/commands/"

# The operations a charge point initiates (OCPP 1.6 section 3.3; the Security Whitepaper's
# LogStatusNotification, SecurityEventNotification, SignCertificate and
# SignedFirmwareStatusNotification). DataTransfer goes both ways, so it is not here.
CHARGE_POINT_INITIATED = frozenset({
    "Authorize", "BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification", "Heartbeat",
    "MeterValues", "StartTransaction", "StatusNotification", "StopTransaction",
    "LogStatusNotification", "SecurityEventNotification", "SignCertificate", "SignedFirmwareStatusNotification",
})
# The central-system operations the Security Whitepaper adds.
SECURITY_OPERATIONS = frozenset({
    "CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage", "GetInstalledCertificateIds", "GetLog",
    "InstallCertificate", "SignedUpdateFirmware",
})
# Central-system actions the commands endpoint may not offer yet: each is checked like any other
# once the document lists it, but its absence is no failure. None since the security extension's
# commands are served: every action of the package is required.
NOT_YET_REQUIRED: frozenset[str] = frozenset()
# Keywords that only annotate a schema or locate it; every other keyword is a rule and must agree.
ANNOTATIONS = frozenset({"$schema", "$id", "id", "title", "description", "javaType", "definitions", "$comment"})


def packaged(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((OCPP_SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return schema


def packaged_actions() -> set[str]:
    names = {entry.name.removesuffix(".json") for entry in OCPP_SCHEMAS.iterdir() if entry.name.endswith(".json")}
    return {name for name in names if not name.endswith("Response")}


CENTRAL_SYSTEM_ACTIONS = frozenset(packaged_actions() - CHARGE_POINT_INITIATED)


def resolve(reference: str, root: dict[str, Any]) -> dict[str, Any]:
    """A local JSON pointer ("#/components/schemas/X", "#/definitions/X") within `root`."""
    assert reference.startswith("#/"), f"not a local reference: {reference}"
    target: Any = root
    for part in reference[2:].split("/"):
        assert isinstance(target, dict) and part in target, f"{reference} points at nothing in its document"
        target = target[part]
    return dict(target)


def rules(schema: Any, root: dict[str, Any]) -> Any:
    """What a schema requires of a value, references followed, annotations left out."""
    if isinstance(schema, list):
        return [rules(item, root) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return rules({**resolve(schema["$ref"], root), **{k: v for k, v in schema.items() if k != "$ref"}}, root)
    found: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword == "additionalItems" and isinstance(schema.get("items"), dict):
            continue  # no rule while "items" is one schema for every item (JSON Schema draft 4, 5.3.1.2)
        if keyword == "properties":
            found[keyword] = {name: rules(inner, root) for name, inner in value.items()}
        elif keyword in ("required", "enum"):
            found[keyword] = sorted(value, key=json.dumps)
        else:
            found[keyword] = rules(value, root)
    return found


def differences(described: Any, official: Any, where: str = "") -> list[str]:
    """Where two rule trees part, one line each (property names, required, enums, maxLength, types, ...)."""
    if isinstance(described, dict) and isinstance(official, dict):
        found = []
        for keyword in sorted(set(described) | set(official)):
            if keyword not in official:
                found.append(f"{where}/{keyword}: the document adds {described[keyword]!r}")
            elif keyword not in described:
                found.append(f"{where}/{keyword}: the document lacks {official[keyword]!r}")
            else:
                found += differences(described[keyword], official[keyword], f"{where}/{keyword}")
        return found
    if described != official:
        return [f"{where or '/'}: the document says {described!r}, OCPP says {official!r}"]
    return []


def documented_actions(document: dict[str, Any]) -> set[str]:
    return {path.removeprefix(COMMANDS) for path in document["paths"]
            if path.startswith(COMMANDS) and path != COMMANDS + "{action}"}


def json_schema_of(operation: dict[str, Any], part: str) -> dict[str, Any]:
    container = operation["requestBody"] if part == "request" else operation["responses"]["200"]
    schema: dict[str, Any] = container["content"]["application/json"]["schema"]
    return schema


@pytest.fixture
async def document(server: Any) -> AsyncIterator[dict[str, Any]]:
    async with Operator(server.http) as operator:
        yield await operator.get("/api/openapi.json")


def test_the_central_system_actions_of_the_package_are_the_ones_ocpp_names():
    # The oracle itself: OCPP 1.6's nineteen central-system operations (section 3.3) and the
    # Security Whitepaper's seven, every one with a request and a response schema in the package.
    core = {"CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
            "DataTransfer", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetLocalListVersion",
            "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList",
            "SetChargingProfile", "TriggerMessage", "UnlockConnector", "UpdateFirmware"}
    assert CENTRAL_SYSTEM_ACTIONS == core | SECURITY_OPERATIONS
    for action in CENTRAL_SYSTEM_ACTIONS:
        assert packaged(action)["type"] == packaged(f"{action}Response")["type"] == "object"


async def test_the_commands_the_server_takes_are_the_central_system_actions_and_documented(server, document):
    async with Operator(server.http) as operator:
        await operator.register("OAS-ACTIONS")  # registered, never connected: a known action is 409 or 422
        statuses = {action: (await operator.command("OAS-ACTIONS", action, {}))[0]
                    for action in sorted(packaged_actions() | {"NoSuchAction"})}
        unknown, refusal = await operator.command("OAS-ACTIONS", "NoSuchAction", {})
    taken = {action for action, status in statuses.items() if status != 404}
    generic = document["paths"][COMMANDS + "{action}"]["post"]
    [action_parameter] = [p for p in generic["parameters"] if p["name"] == "action"]

    assert set(statuses[action] for action in taken) <= {409, 422}
    assert (unknown, set(refusal["actions"])) == (404, taken)
    assert documented_actions(document) == taken == set(action_parameter["schema"]["enum"])
    assert CENTRAL_SYSTEM_ACTIONS - NOT_YET_REQUIRED <= taken <= CENTRAL_SYSTEM_ACTIONS
    # The generic path's body and reply: one of the documented actions' schemas.
    schemas = document["components"]["schemas"]
    for union, part in (("OcppRequest", "request"), ("OcppResponse", "response")):
        listed = {json.dumps(rules(choice, document), sort_keys=True) for choice in schemas[union]["anyOf"]}
        officials = [packaged(action if part == "request" else f"{action}Response") for action in taken]
        expected = {json.dumps(rules(official, official), sort_keys=True) for official in officials}
        assert listed == expected, union


async def test_each_command_body_and_reply_is_described_by_its_official_schema(document):
    mismatches: dict[str, list[str]] = {}
    for action in sorted(documented_actions(document)):
        operation = document["paths"][COMMANDS + action]["post"]
        for part, official_name in (("request", action), ("response", f"{action}Response")):
            official = packaged(official_name)
            described = rules(json_schema_of(operation, part), document)
            found = differences(described, rules(official, official))
            if found:
                mismatches[f"{action} {part}"] = found

    assert mismatches == {}
    assert documented_actions(document)  # the loop above checked something
