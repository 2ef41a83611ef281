"""JSON replies and errors: ``{"error": "..."}`` with a clear message, never a stack trace.

The service layer's failures become their HTTP statuses here, in one table,
so a handler just lets them through.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from adapters.service.certificate_signing import NoCertificateAuthority
from adapters.service.commands import CommandRefused
from adapters.service.local_list_sync import ListTooLong
from adapters.service.sessions import CallRejected, CallTimeout, NotConnected
from adapters.service.transaction_end import UnknownTransaction
from adapters.store import NotRegistered
from domain.certificates import RequestNotPending
from domain.operator_end import ReasonRejected, TransactionNotOpen

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body, default=str), status=status, content_type="application/json")


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _extra(failure: Exception) -> dict[str, Any]:
    if isinstance(failure, CallRejected):
        return {"errorCode": failure.code, "errorDescription": failure.description, "errorDetails": failure.details}
    if isinstance(failure, ListTooLong):
        return {"tags": failure.tags, "capacity": failure.capacity}
    return {}


# A service outcome -> the status an operator gets, with the exception's message.
STATUS_OF: dict[type[Exception], int] = {
    NotRegistered: 404,
    UnknownTransaction: 404,
    NotConnected: 409,
    TransactionNotOpen: 409,
    ReasonRejected: 422,
    ListTooLong: 409,
    CommandRefused: 422,
    CallRejected: 502,
    CallTimeout: 504,
    RequestNotPending: 409,
    NoCertificateAuthority: 409,
}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as failure:
        return error(failure.status, failure.message, **failure.extra)
    except tuple(STATUS_OF) as failure:
        status = next(status for kind, status in STATUS_OF.items() if isinstance(failure, kind))
        return error(status, str(failure), **_extra(failure))
    except web.HTTPException as failure:
        if failure.status < 400:
            raise
        return error(failure.status, failure.reason)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error; the server log has the details")
