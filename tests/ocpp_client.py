"""A scriptable charge point and operator for the end-to-end tests.

`ChargePointClient` speaks OCPP-J over a real WebSocket; `Operator` speaks to
the REST API over real HTTP. Neither shares code with the server.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from typing import Any

import aiohttp

API_TOKEN = "test-token"


class ChargePointClient:
    """One charge point. `call` sends a CALL and waits for its answer;
    `next_call` returns the next CALL the central system sent us, and
    `reply`/`reply_error` answer it."""

    def __init__(self, base_ws_url: str, charge_point_id: str, password: str | None = None,
                 protocols: tuple[str, ...] = ("ocpp1.6",)) -> None:
        self.url = f"{base_ws_url}/ocpp/{charge_point_id}"
        self.id = charge_point_id
        self.password = password
        self.protocols = protocols
        self._ids = itertools.count(1)
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._answers: dict[str, asyncio.Future[list[Any]]] = {}
        self.incoming_calls: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.unmatched: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChargePointClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(self.url, protocols=self.protocols, headers=headers,
                                                    max_msg_size=0)
        except BaseException:
            await self.session.close()
            raise
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if frame[0] == 2:
                await self.incoming_calls.put(frame)
            elif frame[1] in self._answers and not self._answers[frame[1]].done():
                self._answers.pop(frame[1]).set_result(frame)
            else:
                await self.unmatched.put(frame)
        self.closed.set()

    async def send_raw(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def call_frame(self, action: str, payload: dict[str, Any], message_id: str | None = None,
                         timeout: float = 10) -> list[Any]:
        """Sends a CALL and returns the whole answer frame (CALLRESULT or CALLERROR)."""
        message_id = message_id or f"m{next(self._ids)}"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._answers[message_id] = future
        await self.send_raw(json.dumps([2, message_id, action, payload]))
        return await asyncio.wait_for(future, timeout)

    async def call(self, action: str, payload: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
        """Sends a CALL and returns the CALLRESULT payload; fails on a CALLERROR."""
        frame = await self.call_frame(action, payload, message_id)
        assert frame[0] == 3, f"expected a CALLRESULT to {action}, got {frame}"
        return frame[2]

    async def next_call(self, timeout: float = 10) -> list[Any]:
        return await asyncio.wait_for(self.incoming_calls.get(), timeout)

    async def reply(self, call: list[Any], payload: dict[str, Any]) -> None:
        await self.send_raw(json.dumps([3, call[1], payload]))

    async def reply_error(self, call: list[Any], code: str, description: str = "", details: Any = None) -> None:
        await self.send_raw(json.dumps([4, call[1], code, description, details or {}]))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
        if self.session is not None:
            await self.session.close()


class Operator:
    """The REST API with the bearer token."""

    def __init__(self, base_http_url: str, token: str = API_TOKEN) -> None:
        self.base = base_http_url
        self.token = token
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Operator:
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self.session is not None
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        async with self.session.request(method, self.base + path, data=data, headers=headers) as response:
            text = await response.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return response.status, parsed

    async def get(self, path: str) -> Any:
        status, body = await self.request("GET", path)
        assert status == 200, (status, body)
        return body

    async def put(self, path: str, body: Any) -> Any:
        status, result = await self.request("PUT", path, body)
        assert status in (200, 201), (status, result)
        return result

    async def register(self, charge_point_id: str, password: str | None = None, description: str = "") -> Any:
        body: dict[str, Any] = {"description": description}
        if password is not None:
            body["password"] = password
        return await self.put(f"/api/chargepoints/{charge_point_id}", body)

    async def events(self, charge_point_id: str) -> list[dict[str, Any]]:
        return (await self.get(f"/api/chargepoints/{charge_point_id}/events"))["events"]
