"""Hostile values in the REST API's paths and queries, and identities that are path steps.

Whatever an operator (or a charge point, on the file routes) sends, a bad
value gets a 4xx whose message names it; no request gives a 500. One server
per store kind serves the module, with `--auto-register`, so a handshake
that is not refused would register its identity.
"""

from __future__ import annotations

import re
from typing import Any, AsyncIterator

import aiohttp
import pytest
from yarl import URL

from tests.ocpp_client import API_TOKEN, Operator, shared_server

server = shared_server("--auto-register")

PARAMETER = re.compile(r"{(\w+)}")
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
