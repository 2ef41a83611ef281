"""The OpenAPI 3 document of the REST API, built from the route table itself."""

from __future__ import annotations

import re
from typing import Any, Iterable

from adapters.ocppj import CENTRAL_SYSTEM_ACTIONS

PARAMETER = re.compile(r"{(\w+)}")
ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def build_document(routes: Iterable[Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "responses": {"200": {"description": "success"}, "4XX": ERROR},
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": _parameter_schema(name)}
            for name in PARAMETER.findall(route.path)
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.method in ("PUT", "POST"):
            operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        if not route.path.startswith("/api/"):
            operation["security"] = []
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "AmpLedger CSMS", "version": "1.0"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                }
            },
        },
    }


def _parameter_schema(name: str) -> dict[str, Any]:
    if name == "action":
        return {"type": "string", "enum": sorted(CENTRAL_SYSTEM_ACTIONS)}
    return {"type": "string"}
