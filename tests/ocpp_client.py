"""A scriptable charge point and operator for the end-to-end tests.

`ChargePointClient` speaks OCPP-J over a real WebSocket; `Operator` speaks to
the REST API over real HTTP. Neither shares code with the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import sqlite3
import ssl
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest

API_TOKEN = "test-token"


class ChargePointClient:
    """One charge point. `call` sends a CALL and waits for its answer;
    `next_call` returns the next CALL the central system sent us, and
    `reply`/`reply_error` answer it."""

    def __init__(self, base_ws_url: str, charge_point_id: str, password: str | bytes | None = None,
                 protocols: tuple[str, ...] = ("ocpp1.6",), tls: ssl.SSLContext | None = None) -> None:
        self.url = f"{base_ws_url}/ocpp/{charge_point_id}"
        self.tls = tls  # for wss://: the client's TLS context (trusted CAs, its certificate)
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
        self.received: list[list[Any]] = []  # every frame, in the order it arrived
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChargePointClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        headers = {}
        if self.password is not None:
            # bytes: an AuthorizationKey's password, any 16 to 20 bytes (not always UTF-8)
            secret = self.password if isinstance(self.password, bytes) else self.password.encode()
            token = base64.b64encode(self.id.encode() + b":" + secret).decode()
            headers["Authorization"] = f"Basic {token}"
        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(self.url, protocols=self.protocols, headers=headers,
                                                    max_msg_size=0, ssl=self.tls if self.tls is not None else True)
        except BaseException:
            await self.session.close()
            raise
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                self.received.append(frame)
                if frame[0] == 2:
                    await self.incoming_calls.put(frame)
                elif frame[1] in self._answers and not self._answers[frame[1]].done():
                    self._answers.pop(frame[1]).set_result(frame)
                else:
                    await self.unmatched.put(frame)
        finally:
            # Calls still waiting will never be answered on this socket: fail them
            # now, so a test awaiting them learns it without waiting for a timeout.
            for future in self._answers.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.id}: connection closed before the answer"))
            self._answers.clear()
            self.closed.set()

    @property
    def close_code(self) -> int | None:
        """The close code the server sent, once the connection is closed."""
        return None if self.ws is None else self.ws.close_code

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

    def __init__(self, base_http_url: str, token: str = API_TOKEN, tls: ssl.SSLContext | None = None) -> None:
        self.base = base_http_url
        self.token = token
        self.tls = tls  # for https://
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Operator:
        connector = aiohttp.TCPConnector(ssl=self.tls) if self.tls is not None else None
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"}, connector=connector)
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

    async def event_types(self, charge_point_id: str) -> list[str]:
        return [event["type"] for event in await self.events(charge_point_id)]

    async def save_id_tag(self, id_tag: str, status: str = "Accepted", expiry_date: str | None = None,
                          parent_id_tag: str | None = None) -> Any:
        body: dict[str, Any] = {"status": status}
        if expiry_date is not None:
            body["expiryDate"] = expiry_date
        if parent_id_tag is not None:
            body["parentIdTag"] = parent_id_tag
        return await self.put(f"/api/idtags/{id_tag}", body)

    async def command(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """A CSMS-initiated call through the API: (HTTP status, body)."""
        return await self.request("POST", f"/api/chargepoints/{charge_point_id}/commands/{action}", payload)


def event_field(event: dict[str, Any], name: str) -> Any:
    """A field of an event's data, by its camelCase name as the API shows it."""
    assert name in event["data"], f"{event['type']} has no {name}: {sorted(event['data'])}"
    return event["data"][name]


def exchanges(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The events that record a charge point's OCPP call, by message id."""
    return {event["data"]["messageId"]: event for event in events
            if "messageId" in event["data"] and "action" not in event["data"]}


def ws_base(server: Any) -> str:
    return f"ws://127.0.0.1:{server.port}"


async def registered(server: Any, operator: Operator, charge_point_id: str, **options: Any) -> ChargePointClient:
    """A charge point the operator registered; `async with` connects it."""
    await operator.register(charge_point_id)
    return ChargePointClient(ws_base(server), charge_point_id, **options)


@contextlib.contextmanager
def fresh_store(kind: str, folder: Path) -> Iterator[str]:
    """The url of an empty store, "sqlite" (a file in folder) or "postgresql" (a database dropped afterwards)."""
    from tests.conftest import drop_postgres_database, make_postgres_database

    if kind == "sqlite":
        yield f"sqlite:///{folder / 'csms.sqlite3'}"
        return
    url, database = make_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(database)


def shared_server(*extra: str) -> Any:
    """A module-scoped fixture: one `csms serve` per store kind, shared by a module's tests.

    Safe where every test uses its own charge point ids and id tags. The store
    is a fresh SQLite file or a fresh PostgreSQL database, dropped afterwards.
    """

    @pytest.fixture(scope="module", params=["sqlite", "postgresql"])
    def fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        from tests.conftest import Server

        with fresh_store(request.param, tmp_path_factory.mktemp("store")) as store:
            server = Server(store, "--call-timeout", "2", *extra)
            try:
                yield server.start()
            finally:
                server.stop()
            server.check_output()

    return fixture


def instant(value: Any) -> datetime:
    """A timestamp from the API or a read-model row, as an aware datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_model_rows(store: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows straight from the read-model tables, as an analyst reads them."""
    if store.startswith("sqlite:///"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(store, row_factory=dict_row) as conn:
        return list(conn.execute(sql.replace("?", "%s"), params).fetchall())  # type: ignore[arg-type]
