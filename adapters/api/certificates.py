"""Charge point certificates: the CSRs waiting for an operator, and the CSMS root installed on a charge point."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web

from adapters.api.commands import CALL_ERRORS, send_checked
from adapters.api.freshness import fresh_read_models
from adapters.api.parameters import list_filters, read_json_object, registered_id
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Query, Route
from adapters.service.startup import CERTIFICATE_SIGNER
from projections.certificate_requests import STATUSES, find_request, find_requests

CENTRAL_SYSTEM_ROOT = "CentralSystemRootCertificate"


async def list_requests(request: web.Request) -> web.Response:
    status, charge_point_id = await list_filters(request, STATUSES)
    read_models = await fresh_read_models(request)
    found = await asyncio.to_thread(find_requests, read_models, status, charge_point_id)
    return json_response({"certificateRequests": found})


async def _request(request: web.Request) -> dict[str, Any]:
    request_id = request.match_info["requestId"]
    try:
        uuid.UUID(request_id)  # request ids are UUIDs (domain/certificates.py); nothing else is looked up
    except ValueError:
        raise ApiError(404, f"unknown certificate request {request_id}") from None
    read_models = await fresh_read_models(request)
    found = await asyncio.to_thread(find_request, read_models, request_id)
    if found is None:
        raise ApiError(404, f"unknown certificate request {request_id}")
    return found


async def approve(request: web.Request) -> web.Response:
    found = await _request(request)
    result = await request.app[CERTIFICATE_SIGNER].sign_and_send(found["chargePointId"], found["id"])
    return json_response(result)


async def reject(request: web.Request) -> web.Response:
    found = await _request(request)
    body = await read_json_object(request)
    reason = body.get("reason", "rejected by an operator")
    if not isinstance(reason, str) or not 0 < len(reason) <= 500:
        raise ApiError(422, "reason must be a text of 1 to 500 characters")
    await request.app[CERTIFICATE_SIGNER].reject(found["chargePointId"], found["id"], reason)
    return json_response({**found, "status": "rejected", "reason": reason})


async def install_csms_root(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    body = await read_json_object(request)
    certificate = body.get("certificate")
    if certificate is None:
        certificate = request.app[CERTIFICATE_SIGNER].csms_root()
    payload = {"certificateType": CENTRAL_SYSTEM_ROOT, "certificate": certificate}
    reply = await send_checked(request, charge_point_id, "InstallCertificate", payload)
    return json_response(reply)


ROUTES = [
    Route(
        "GET", "/api/certificate-requests", list_requests,
        "The CSRs charge points sent (SignCertificate) and what became of each",
        description="status: pending (waiting to be signed), rejected (the CSR or an operator refused it), "
        "issued (signed and sent), accepted or refused (the charge point's answer to CertificateSigned).",
        replies={200: "CertificateRequestList"},
        errors={400: "an unknown status", 404: "unknown charge point"},
        query=(Query("status", "string", ", ".join(STATUSES)), Query("chargePointId", "string", "only its")),
    ),
    Route(
        "POST", "/api/certificate-requests/{requestId}/approve", approve,
        "Sign a pending CSR and send the certificate (CertificateSigned)",
        description="Replies with the issued certificate (serialNumber, fingerprint, subject, issuer, notBefore, "
        "notAfter) and the charge point's answer. CertificateIssued is history before the call goes out.",
        errors={404: "unknown certificate request", 409: "decided already, no CA, or the charge point is not "
                "connected (the request stays pending)", 502: CALL_ERRORS[502], 504: CALL_ERRORS[504]},
    ),
    Route(
        "POST", "/api/certificate-requests/{requestId}/reject", reject,
        "Refuse a pending CSR: {\"reason\"?}", body="CertificateRequestRejection",
        errors={404: "unknown certificate request", 409: "decided already", 422: "a reason that is not a text"},
    ),
    Route(
        "POST", "/api/chargepoints/{chargePointId}/install-csms-root", install_csms_root,
        "Install this CSMS's root certificate on the charge point (InstallCertificate CentralSystemRootCertificate)",
        description="The root of the CA the central system signs with (built in, or --ca-cert), unless the body "
        "gives {\"certificate\": PEM}. Replies with the charge point's answer; Accepted becomes CertificateInstalled.",
        body="CsmsRootInstallation",
        errors={**CALL_ERRORS, 409: "the charge point is not connected, or no CA is configured"},
    ),
]
