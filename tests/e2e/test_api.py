"""The REST API as a whole: bearer token, JSON errors, status documents, OpenAPI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from importlib import resources
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from openapi_spec_validator import validate

import app as composition
from adapters.api.document import document_of
from adapters.api.openapi import ocpp_schema
from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS
from adapters.service.settings import Settings
from adapters.store import EventStore
from tests.conftest import ROOT, free_port
from tests.ocpp_client import API_TOKEN, ChargePointClient, Operator, shared_server, ws_base

server = shared_server()

PARAMETER = re.compile(r"{(\w+)}")
WRONG_AUTHORIZATIONS = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer wrong-token",
    f"Bearer {API_TOKEN}x",
    f"Bearer {API_TOKEN[:-1]}",
    f"Basic {API_TOKEN}",
    API_TOKEN,
    f"Token {API_TOKEN}",
]


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


@pytest.fixture(scope="module")
def built_app() -> Any:
    """The application as `csms serve` builds it; never started, so it needs no store."""
    return composition.build_app("memory:", Settings(), "a-token")


def served_routes(application: Any) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route the application's router serves."""
    for resource in application.router.resources():
        for route in resource:
            if route.method != "HEAD":  # aiohttp answers HEAD beside GET by itself
                yield route.method, resource.canonical


def concrete(path: str, value: str = "1") -> str:
    return PARAMETER.sub(value, path)


# ---- bearer token ------------------------------------------------------------------------


async def test_every_api_route_refuses_a_missing_or_wrong_token_with_json(server, built_app):
    api_routes = sorted({route for route in served_routes(built_app) if route[1].startswith("/api/")})
    assert len(api_routes) >= 10
    refused = []
    async with aiohttp.ClientSession() as session:
        for method, path in api_routes:
            for authorization in WRONG_AUTHORIZATIONS:
                headers = {} if authorization is None else {"Authorization": authorization}
                async with session.request(method, server.http + concrete(path), headers=headers,
                                           data=b'{"status": "Accepted"}') as response:
                    body = await response.json(content_type=None)
                    refused.append((method, path, authorization, response.status, body,
                                    response.headers.get("WWW-Authenticate"), response.content_type))

    assert [r for r in refused if r[3] != 401] == []
    assert all(r[4] == {"error": "missing or wrong bearer token"} for r in refused)
    assert all(r[5] == "Bearer" and r[6] == "application/json" for r in refused)


async def test_a_refused_request_changes_nothing(server, operator):
    async with aiohttp.ClientSession() as session:
        async with session.put(server.http + "/api/chargepoints/API-NOAUTH", json={"description": "x"}) as response:
            assert response.status == 401
        async with session.put(server.http + "/api/idtags/NOAUTH-TAG", json={"status": "Accepted"},
                               headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401

    assert (await operator.request("GET", "/api/chargepoints/API-NOAUTH"))[0] == 404
    assert (await operator.request("GET", "/api/idtags/NOAUTH-TAG"))[0] == 404


async def test_the_right_token_is_accepted_whatever_the_case_of_the_scheme(server):
    async with aiohttp.ClientSession() as session:
        for scheme in ("Bearer", "bearer", "BEARER"):
            async with session.get(server.http + "/api/chargepoints",
                                   headers={"Authorization": f"{scheme} {API_TOKEN}"}) as response:
                assert response.status == 200, scheme


async def test_health_needs_no_token(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.http + "/health") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"


def test_an_unset_token_is_generated_and_printed_once(tmp_path):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "CSMS_API_TOKEN"}
    env.update(PYTHONUNBUFFERED="1", CSMS_LOG_LEVEL="WARNING", CSMS_DATA_DIR=str(tmp_path / "files"))
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--store", f"sqlite:///{tmp_path / 'token.sqlite3'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        for line in process.stdout:
            output.append(line)
            if "Running on" in line:
                break
        else:
            pytest.fail("csms serve exited before it was ready:\n" + "".join(output))
        rest = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
        rest.start()
        announced = [re.search(r"API token \(shown once\): (\S+)", line) for line in output]
        tokens = [match.group(1) for match in announced if match]
        assert len(tokens) == 1 and len(tokens[0]) >= 32
        token = tokens[0]
        statuses = [_get_status(port, "/api/chargepoints", token), _get_status(port, "/api/chargepoints", "guess")]
    finally:
        process.terminate()
        process.wait(timeout=20)
    rest.join(timeout=20)
    assert "Traceback" not in "".join(output), "".join(output)

    assert statuses == [200, 401]
    assert "".join(output).count(token) == 1


def _get_status(port: int, path: str, token: str) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as failure:
        return failure.code


# ---- errors are JSON ------------------------------------------------------------------------


async def test_errors_are_json_with_an_error_message_and_no_stack_trace(server, operator):
    cases = {
        "unknown /api path": await operator.request("GET", "/api/no/such/thing"),
        "unknown path": await operator.request("GET", "/nothing-here"),
        "method not allowed": await operator.request("DELETE", "/api/chargepoints"),
        "bad paging": await operator.request("GET", "/api/chargepoints/API-ERR/events?after=soon"),
        "negative paging": await operator.request("GET", "/api/chargepoints/API-ERR/events?limit=-1"),
        "bad identity": await operator.request("GET", "/api/chargepoints/not%20valid"),
        "unknown charge point": await operator.request("GET", "/api/chargepoints/API-NOBODY"),
        "body not JSON": await operator.request("PUT", "/api/chargepoints/API-ERR", raw=b"{"),
        "body not an object": await operator.request("PUT", "/api/chargepoints/API-ERR", raw=b"[]"),
        "field of a wrong type": await operator.request("PUT", "/api/chargepoints/API-ERR", {"description": 5}),
        "unknown id tag": await operator.request("GET", "/api/idtags/NO-SUCH-TAG"),
    }

    statuses = {name: status for name, (status, _) in cases.items()}
    assert statuses == {
        "unknown /api path": 404, "unknown path": 404, "method not allowed": 405, "bad paging": 400,
        "negative paging": 400, "bad identity": 400, "unknown charge point": 404, "body not JSON": 400,
        "body not an object": 400, "field of a wrong type": 422, "unknown id tag": 404,
    }
    for name, (_, body) in cases.items():
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], name
        assert "Traceback" not in json.dumps(body) and 'File "' not in json.dumps(body), name


# ---- charge point status ----------------------------------------------------------------------


async def test_the_status_shows_the_contracts_fields(server, operator):
    await operator.register("API-STATUS", description="bay 4")
    await operator.save_id_tag("API-STATUS-TAG")
    async with ChargePointClient(ws_base(server), "API-STATUS") as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Volt 22",
                                           "chargePointSerialNumber": "SN-0001", "firmwareVersion": "1.4.2"})
        await cp.call("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"})
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing",
                                             "info": "cable in", "timestamp": "2030-01-01T10:00:00Z"})
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "API-STATUS-TAG", "meterStart": 100,
                                                     "timestamp": "2030-01-01T10:00:05Z"})
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                                             "timestamp": "2030-01-01T10:00:06Z"})
        await cp.call("FirmwareStatusNotification", {"status": "Downloading"})
        await cp.call("DiagnosticsStatusNotification", {"status": "Uploading"})
        online = await operator.get("/api/chargepoints/API-STATUS")
        listed = {entry["id"]: entry for entry in (await operator.get("/api/chargepoints"))["chargePoints"]}
    offline = await operator.get("/api/chargepoints/API-STATUS")

    # The list comes from the status read model, the single view from the
    # aggregate (with what replies taught): every field the list shows, the
    # single view shows too, with the same value.
    entry = listed["API-STATUS"]
    assert {field: online[field] for field in entry if field != "connectors"} == {
        field: value for field, value in entry.items() if field != "connectors"
    }
    assert {
        key: {field: online["connectors"][key][field] for field in connector}
        for key, connector in entry["connectors"].items()
    } == entry["connectors"]
    assert online["online"] is True and offline["online"] is False
    assert online["lastSeen"] is not None
    assert (online["vendor"], online["model"], online["serialNumber"], online["firmwareVersion"]) == (
        "Acme", "Volt 22", "SN-0001", "1.4.2",
    )
    assert (online["firmwareStatus"], online["diagnosticsStatus"]) == ("Downloading", "Uploading")
    assert online["localListVersion"] is None
    assert online["description"] == "bay 4"
    assert set(online["connectors"]) == {"0", "1"}
    connector = online["connectors"]["1"]
    assert connector["status"] == "Charging"
    assert connector["errorCode"] == "NoError"
    assert connector["timestamp"] == "2030-01-01T10:00:06Z"
    assert connector["transactionId"] == started["transactionId"]
    assert online["connectors"]["0"]["transactionId"] is None


async def test_the_status_and_history_have_the_documented_shapes(server, operator):
    await operator.register("API-SHAPE")
    async with ChargePointClient(ws_base(server), "API-SHAPE") as cp:
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        status = await operator.get("/api/chargepoints/API-SHAPE")
    events = await operator.get("/api/chargepoints/API-SHAPE/events")
    schemas = (await operator.get("/api/openapi.json"))["components"]["schemas"]

    described = schemas["ChargePointStatus"]
    assert set(status) == set(described["required"]) == set(described["properties"])
    assert set(status["connectors"]["1"]) == set(schemas["Connector"]["required"])
    assert all(set(event) == set(schemas["Event"]["required"]) for event in events["events"])
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", name) for event in events["events"] for name in event["data"])


# ---- OpenAPI -----------------------------------------------------------------------------------


async def test_the_openapi_document_is_a_valid_openapi_3_document(server, operator, built_app):
    document = await operator.get("/api/openapi.json")

    validate(document)
    assert document["openapi"].startswith("3.")
    assert document == json.loads(json.dumps(document_of(built_app)))
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, item in document["paths"].items():
        for operation in item.values():
            if path.startswith("/api/"):
                assert "401" in operation["responses"], path
                assert operation.get("security") is None, path  # the document-wide bearer token applies
            else:
                assert operation["security"] == [], path


def test_every_route_the_app_serves_is_described(built_app):
    paths = document_of(built_app)["paths"]

    undescribed = [(method, path) for method, path in served_routes(built_app)
                   if method.lower() not in paths.get(path, {})]
    assert undescribed == []
    assert all(operation["summary"] for item in paths.values() for operation in item.values())


async def test_every_described_path_is_served(built_app):
    paths = document_of(built_app)["paths"]
    unserved = []
    for path, item in paths.items():
        for method in item:
            match = await built_app.router.resolve(make_mocked_request(method.upper(), concrete(path, "CP1")))
            if match.http_exception is not None:
                unserved.append((method, path))
    assert unserved == []


def test_each_command_is_described_with_its_ocpp_schemas(built_app):
    document = document_of(built_app)
    schemas = document["components"]["schemas"]
    generic = document["paths"]["/api/chargepoints/{chargePointId}/commands/{action}"]["post"]

    action_parameter = next(p for p in generic["parameters"] if p["name"] == "action")
    assert action_parameter["schema"]["enum"] == sorted(CENTRAL_SYSTEM_ACTIONS)
    assert set(generic["responses"]) >= {"200", "400", "401", "404", "409", "422", "502", "504"}
    for action in CENTRAL_SYSTEM_ACTIONS:
        operation = document["paths"][f"/api/chargepoints/{{chargePointId}}/commands/{action}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        reply = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{action}Request"}
        assert reply == {"$ref": f"#/components/schemas/{action}Response"}
        assert schemas[f"{action}Request"] == ocpp_schema(action)
        assert schemas[f"{action}Response"] == ocpp_schema(f"{action}Response")
        assert schemas[f"{action}Request"]["title"] == f"{action}Request"
        assert operation["responses"]["502"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/CallError"
        }
    assert "$schema" not in json.dumps(schemas)


def test_ocpp_schemas_in_the_document_are_the_packaged_ones_less_the_draft_marker():
    packaged = json.loads((resources.files("ocpp") / "v16" / "schemas" / "Reset.json").read_text(encoding="utf-8"))
    described = ocpp_schema("Reset")

    assert {name: value for name, value in packaged.items() if name != "$schema"} == described


async def test_the_store_and_token_come_from_csms_store_and_csms_api_token(store_url, server_factory):
    environment = {"CSMS_STORE": store_url, "CSMS_API_TOKEN": "token-from-the-environment"}
    served = server_factory.start("(from CSMS_STORE)", environment=environment)  # given no --store, no --api-token
    async with Operator(served.http, token="token-from-the-environment") as operator:
        status, _ = await operator.request("PUT", "/api/chargepoints/ENV-CP", {"description": "from env"})
    async with Operator(served.http) as stranger:  # the suite's usual token is not this server's
        refused, _ = await stranger.request("GET", "/api/chargepoints")
    served.stop()

    assert (status, refused) == (201, 401)  # then CSMS_API_TOKEN is the token
    store = EventStore(store_url)  # and the charge point is in the store CSMS_STORE named
    try:
        assert store.load("ENV-CP") is not None
    finally:
        store.close()


async def test_a_memory_store_keeps_nothing_across_a_restart(server_factory):
    served = server_factory.start("memory:")  # given
    async with Operator(served.http) as operator:
        created, _ = await operator.request("PUT", "/api/chargepoints/MEM-CP", {})
        seen, _ = await operator.request("GET", "/api/chargepoints/MEM-CP")

    served.restart()  # when
    async with Operator(served.http) as operator:
        after, _ = await operator.request("GET", "/api/chargepoints/MEM-CP")

    assert (created, seen, after) == (201, 200, 404)  # then


async def test_a_put_is_201_when_it_creates_and_200_when_it_updates_and_idtags_answer_as_documented(
    server, operator
):
    statuses = {
        "chargepoint created": await operator.request("PUT", "/api/chargepoints/API-PUT", {"description": "one"}),
        "chargepoint updated": await operator.request("PUT", "/api/chargepoints/API-PUT", {"description": "two"}),
        "idTag created": await operator.request("PUT", "/api/idtags/API-PUT-TAG", {"status": "Accepted"}),
        "idTag updated": await operator.request("PUT", "/api/idtags/API-PUT-TAG", {"status": "Blocked"}),
        "idTag read": await operator.request("GET", "/api/idtags/API-PUT-TAG"),
        "idTag with an unknown status": await operator.request("PUT", "/api/idtags/API-PUT-TAG", {"status": "Maybe"}),
        "idTag deleted": await operator.request("DELETE", "/api/idtags/API-PUT-TAG"),
        "idTag deleted again": await operator.request("DELETE", "/api/idtags/API-PUT-TAG"),
        "idTag read after": await operator.request("GET", "/api/idtags/API-PUT-TAG"),
    }

    assert {case: status for case, (status, _) in statuses.items()} == {
        "chargepoint created": 201, "chargepoint updated": 200,
        "idTag created": 201, "idTag updated": 200, "idTag read": 200, "idTag with an unknown status": 422,
        "idTag deleted": 204, "idTag deleted again": 404, "idTag read after": 404,
    }
    assert statuses["idTag read"][1]["status"] == "Blocked"
    assert "error" in statuses["idTag with an unknown status"][1]


def metric(text: str, name: str) -> float:
    # Each line is labelled with the node that serves it: name{node="..."} value
    values = [line.split()[1] for line in text.splitlines() if line.startswith(name + "{node=")]
    assert len(values) == 1, text
    return float(values[0])


async def test_health_and_metrics_count_connections_and_committed_events(store_url, server_factory):
    served = server_factory.start(store_url)  # a server of its own: nothing else commits meanwhile
    async with Operator(served.http) as operator:
        async def figures() -> tuple[dict[str, Any], str]:
            health = await operator.get("/health")
            async with operator.session.get(served.http + "/metrics") as response:  # type: ignore[union-attr]
                return health, await response.text()

        before, before_metrics = await figures()  # given
        await operator.register("API-FIGURES")  # when one event (Registered), then two more (Connected, Booted)
        async with ChargePointClient(ws_base(served), "API-FIGURES") as cp:
            await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One"})
            during, during_metrics = await figures()

    assert during["committedEvents"] - before["committedEvents"] == 3  # then
    assert during["connectedChargePoints"] == before["connectedChargePoints"] + 1
    assert during["commitBatches"] > before["commitBatches"]
    assert metric(during_metrics, "csms_committed_events_total") == during["committedEvents"]
    assert metric(during_metrics, "csms_commit_batches_total") == during["commitBatches"]
    assert metric(during_metrics, "csms_connected_charge_points") == during["connectedChargePoints"]
    assert metric(before_metrics, "csms_read_model_failures") == 0
