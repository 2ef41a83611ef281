"""Hostile values in the REST API's paths and queries, and identities that are path steps.

Whatever an operator (or a charge point, on the file routes) sends, a bad
value gets a 4xx whose message names it; no request gives a 500. One server
per store kind serves the module, with `--auto-register`, so a handshake
that is not refused would register its identity.
"""

from __future__ import annotations

import re
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest
from yarl import URL

from tests.conftest import Server
from tests.e2e.steps import connected
from tests.ocpp_client import API_TOKEN, Operator, fresh_store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per store kind for the module, its uploads in a folder of its own."""
    folder = tmp_path_factory.mktemp("api-input")
    with fresh_store(request.param, folder) as store:
        served = Server(store, "--call-timeout", "2", "--auto-register", "--data-dir", str(folder / "files"))
        try:
            yield served.start()
        finally:
            served.stop()
        served.check_output()

PARAMETER = re.compile(r"{(\w+)}")
HOSTILE = [
    "99999999999999999999", "9223372036854775808", "-9223372036854775809", "-1", "abc", "", "%00", "a%00b",
    "9999-12-31T23:59:60Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "%2E%2E", "...", "%0A",
    "x" * 300, "%FF", "1e309",
]
DOT_IDS = [".", "..", "...", "%2E", "%2E%2E", "%2e%2e%2e"]


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def raw_request(operator: Operator, method: str, path: str, **options: Any) -> tuple[int, Any]:
    """A request whose path goes out exactly as written (no dot-segment folding, no re-encoding)."""
    assert operator.session is not None
    async with operator.session.request(method, URL(operator.base + path, encoded=True), **options) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


# ---- out-of-range values: a 400 naming the parameter --------------------------------------------

OUT_OF_RANGE = {
    "a leap second at the end of 9999": ("/api/transactions?since=9999-12-31T23:59:60Z", "since"),
    "an offset that carries past 9999": ("/api/transactions?until=9999-12-31T23:59:59-14:00", "until"),
    "an offset that carries before year 1": ("/api/transactions?since=0001-01-01T00:00:00%2B14:00", "since"),
    "a state moment past 9999": ("/api/chargepoints/INPUT-CP/state?at=9999-12-31T23:59:60Z", "at"),
    "an event version past 64 bits": ("/api/chargepoints/INPUT-CP/events?after=99999999999999999999", "after"),
    "a page size past 64 bits": ("/api/chargepoints/INPUT-CP/events?limit=9223372036854775808", "limit"),
    "a transaction id past 64 bits": ("/api/transactions/99999999999999999999", "transactionId"),
    "a transaction id below 64 bits": ("/api/transactions/-9223372036854775809", "transactionId"),
    "a 23-digit duration": (
        "/api/chargepoints/INPUT-CP/composite-schedule?connectorId=1&duration=12345678901234567890123", "duration"),
    "a 21-digit connector": (
        "/api/chargepoints/INPUT-CP/composite-schedule?connectorId=123456789012345678901&duration=60", "connectorId"),
    "a day that is not a date": ("/api/analytics/daily?since=yesterday", "since"),
    "a NUL in a charge point filter": ("/api/transactions?chargePointId=a%00b", "chargePointId"),
    "a NUL in an id tag filter": ("/api/transactions?idTag=%00", "idTag"),
    "a NUL in a day": ("/api/analytics/daily?until=%00", "until"),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
async def test_an_out_of_range_query_value_gets_a_400_naming_it(server, operator, case):
    path, name = OUT_OF_RANGE[case]
    await operator.register("INPUT-CP")

    status, body = await raw_request(operator, "GET", path)

    assert status == 400, (status, body)
    assert name in body["error"], body


async def test_the_largest_64_bit_values_are_still_taken(server, operator):
    await operator.register("INPUT-MAX")
    largest = 2**63 - 1

    assert (await operator.get(f"/api/chargepoints/INPUT-MAX/events?after={largest}"))["events"] == []
    status, _ = await operator.request("GET", f"/api/transactions/{largest}")
    assert status == 404
    schedule = await operator.get(f"/api/chargepoints/INPUT-MAX/composite-schedule?connectorId=1&duration={largest}")
    assert schedule["chargingSchedule"]["duration"] == largest
    assert (await operator.get("/api/transactions?since=9999-12-31T23:59:59Z"))["transactions"] == []


MULTIPART_WITHOUT_BOUNDARY = {
    "no boundary": "multipart/form-data",
    "an empty boundary": "multipart/form-data; boundary=",
}


@pytest.mark.parametrize("content_type", list(MULTIPART_WITHOUT_BOUNDARY.values()),
                         ids=list(MULTIPART_WITHOUT_BOUNDARY))
@pytest.mark.parametrize("method, path", [
    ("PUT", "/diagnostics/INPUT-UP/diag.txt"),
    ("POST", "/diagnostics/INPUT-UP/"),
    ("PUT", "/api/firmware/image.bin"),
])
async def test_a_multipart_upload_without_a_boundary_gets_a_400_naming_it(server, operator, method, path,
                                                                          content_type):
    await operator.register("INPUT-UP", password="input-secret")
    auth = aiohttp.BasicAuth("INPUT-UP", "input-secret").encode() if path.startswith("/diagnostics/") else None
    headers = {"Content-Type": content_type, **({"Authorization": auth} if auth else {})}

    status, body = await operator.request(method, path, raw=b"hello", headers=headers)

    assert status == 400, (status, body)
    assert "boundary" in body["error"]
    assert (await operator.get("/api/chargepoints/INPUT-UP/diagnostics"))["files"] == []


async def test_a_multipart_body_that_is_not_multipart_gets_a_400(server, operator):
    await operator.register("INPUT-MALFORMED", password="input-secret")
    auth = aiohttp.BasicAuth("INPUT-MALFORMED", "input-secret").encode()

    status, body = await operator.request("PUT", "/diagnostics/INPUT-MALFORMED/d.txt", raw=b"not multipart",
                                          headers={"Content-Type": "multipart/form-data; boundary=xyz",
                                                   "Authorization": auth})

    assert status == 400, (status, body)
    assert "multipart" in body["error"]


# ---- every route of the OpenAPI document, with hostile values ------------------------------------


def hostile_requests(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) for each route: each path parameter, then each query parameter, set to each hostile value."""
    requests = []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            names = PARAMETER.findall(template)
            queries = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            # Integers the route needs get a good value, so a hostile one reaches as far as it can.
            baseline = {p["name"]: "1" for p in queries if p["schema"].get("type") == "integer"}
            for value in HOSTILE:
                for name in names:
                    path = template
                    for other in names:
                        good = "INPUT-WALK" if other == "chargePointId" else "1"
                        path = path.replace(f"{{{other}}}", value if other == name else good)
                    requests.append((method.upper(), path))
                plain = PARAMETER.sub(lambda m: "INPUT-WALK" if m[1] == "chargePointId" else "1", template)
                for query in queries:
                    pairs = {**baseline, query["name"]: value}
                    requests.append((method.upper(), plain + "?" + "&".join(f"{k}={v}" for k, v in pairs.items())))
    return requests


async def test_no_route_of_the_openapi_document_answers_hostile_values_with_a_5xx(server, operator):
    await operator.register("INPUT-WALK")
    document = await operator.get("/api/openapi.json")
    requests = hostile_requests(document)
    assert len(requests) > 1000
    answers = []
    # One at a time: this is about each value, not about requests racing each other.
    for method, path in requests:
        status, _ = await raw_request(operator, method, path, data=b"{}")
        answers.append((status, method, path))

    assert [answer for answer in answers if answer[0] >= 500] == []


# ---- identities that are path steps --------------------------------------------------------------


@pytest.mark.parametrize("charge_point_id", DOT_IDS)
async def test_a_dot_identity_is_refused_at_registration(server, operator, charge_point_id):
    status, body = await raw_request(operator, "PUT", f"/api/chargepoints/{charge_point_id}", data=b"{}")

    assert status == 400, (status, body)
    assert "identity" in body["error"]
    listed = [cp["id"] for cp in (await operator.get("/api/chargepoints"))["chargePoints"]]
    assert not [cp for cp in listed if set(cp) == {"."}]


@pytest.mark.parametrize("charge_point_id", DOT_IDS)
async def test_a_dot_identity_is_refused_at_the_handshake(server, operator, charge_point_id):
    url = URL(f"ws://127.0.0.1:{server.port}/ocpp/{charge_point_id}", encoded=True)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, protocols=("ocpp1.6",))

    assert refused.value.status == 400
    listed = [cp["id"] for cp in (await operator.get("/api/chargepoints"))["chargePoints"]]
    assert not [cp for cp in listed if set(cp) == {"."}]


async def test_every_route_with_a_charge_point_in_its_path_refuses_a_dot_identity(server, operator):
    document = await operator.get("/api/openapi.json")
    answers = {}
    for template, operations in document["paths"].items():
        if "{chargePointId}" not in template or template.startswith("/ocpp/"):
            continue
        for method in operations:
            path = PARAMETER.sub(lambda m: "%2E%2E" if m[1] == "chargePointId" else "1", template)
            answers[method.upper(), path], _ = await raw_request(
                operator, method.upper(), path, data=b"{}", headers={"Authorization": f"Bearer {API_TOKEN}"})

    assert len(answers) > 10
    assert {request: status for request, status in answers.items() if status != 400} == {}


async def test_an_identity_with_a_trailing_newline_is_refused(server, operator):
    status, _ = await raw_request(operator, "PUT", "/api/chargepoints/INPUT-NL%0A", data=b"{}")

    assert status == 400


# ---- a NUL in a body's text: a 422 naming the field, nothing stored ---------------------------

NUL_BODIES = {
    "a charge point's description": ("PUT", "/api/chargepoints/INPUT-NUL", {"description": "a\x00b"}, "description"),
    "a tariff's currency": ("PUT", "/api/tariffs/default", {"currency": "E\x00R"}, "currency"),
    "an idTag's parentIdTag": ("PUT", "/api/idtags/NUL-TAG", {"status": "Accepted", "parentIdTag": "P\x00"},
                               "parentIdTag"),
    "a nested command field": ("POST", "/api/chargepoints/INPUT-NUL/commands/SendLocalList",
                               {"listVersion": 1, "updateType": "Full",
                                "localAuthorizationList": [{"idTag": "T\x00"}]},
                               "localAuthorizationList[0].idTag"),
    "a key": ("PUT", "/api/chargepoints/INPUT-NUL", {"descr\x00iption": "x"}, "descr\x00iption"),
}


@pytest.mark.parametrize("case", list(NUL_BODIES))
async def test_a_nul_in_a_body_text_gets_a_422_naming_the_field(server, operator, case):
    method, path, body, field = NUL_BODIES[case]
    await operator.register("INPUT-NUL", description="before")

    status, reply = await operator.request(method, path, body)

    assert status == 422, (status, reply)
    assert reply["error"] == f"{field} must not contain a NUL character"
    assert (await operator.get("/api/chargepoints/INPUT-NUL"))["description"] == "before"
    assert (await operator.request("GET", "/api/idtags/NUL-TAG"))[0] == 404


@pytest.mark.parametrize(("action", "payload", "field"), [
    ("ReserveNow", {"connectorId": 1, "expiryDate": "9999-12-31T23:59:60Z", "idTag": "TAG", "reservationId": 9},
     "expiryDate"),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "startSchedule": "0000-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}}, "startSchedule"),
    ("GetDiagnostics", {"location": "ftp://diag.example/", "startTime": "9999-12-31T23:59:59-14:00"}, "startTime"),
])
async def test_a_command_with_a_date_time_no_store_can_hold_is_a_422_and_nothing_is_sent(
    server, operator, action, payload, field
):
    charge_point_id = f"API-DATES-{action}"
    async with connected(server, operator, charge_point_id) as cp:
        status, body = await operator.command(charge_point_id, action, payload)
        history = await operator.event_types(charge_point_id)

    assert status == 422, body
    assert body["code"] == "PropertyConstraintViolation" and field in body["error"]
    assert cp.incoming_calls.empty() and "CallSent" not in history
