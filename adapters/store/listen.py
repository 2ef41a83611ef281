"""Messages between nodes over PostgreSQL's LISTEN/NOTIFY: no broker of our own.

Each node listens on a channel of its own (named from its node name) on one
connection kept for that, and sends on another. A message is a JSON object;
one bigger than a NOTIFY payload may be (8000 bytes) waits in
``csms_node_messages`` and the notification names its row. A message sent
while its receiver is not listening is lost: senders wait with a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Any, Callable

import orjson

log = logging.getLogger(__name__)

MAX_NOTIFY_PAYLOAD = 7900  # bytes; PostgreSQL refuses more than 8000 (less a margin for the envelope)
RELISTEN_DELAY = 1.0  # seconds between attempts to listen again after the connection broke
STALE_MESSAGE_SECONDS = 300  # an oversized message nobody fetched (its receiver died) is dropped after this
LISTEN_TIMEOUT = 30.0  # seconds a starting node waits for its LISTEN to be in force

Message = dict[str, Any]


def channel_of(node: str) -> str:
    """A node's channel: an identifier PostgreSQL takes whatever the node's name holds."""
    return "csms_node_" + hashlib.sha1(node.encode()).hexdigest()[:24]


class NodeChannel:
    def __init__(self, conninfo: str, node: str) -> None:
        self._conninfo = conninfo
        self.node = node
        self._sender: Any = None
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while this node's LISTEN is in force

    async def _connect(self, purpose: str) -> Any:
        import psycopg

        # Named, so an operator can tell them apart in pg_stat_activity.
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=f"csms {purpose} {self.node}"[:63]
        )

    async def start(self, deliver: Callable[[Message], None]) -> None:
        """Listens from now on; ``deliver`` gets each message (on the event loop), in order of arrival."""
        self._sender = await self._connect("messages")
        self._task = asyncio.get_running_loop().create_task(self._listen(deliver), name="node channel")
        await asyncio.wait_for(self.listening.wait(), LISTEN_TIMEOUT)

    async def _listen(self, deliver: Callable[[Message], None]) -> None:
        from psycopg import sql

        while True:
            try:
                async with await self._connect("listen") as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel_of(self.node))))
                    self.listening.set()
                    async for notification in conn.notifies():
                        message = await self._message(notification.payload)
                        if message is not None:
                            deliver(message)
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                log.warning("node %s stopped listening (%s); listening again in %g s", self.node, failure,
                            RELISTEN_DELAY)
            finally:
                self.listening.clear()
            await asyncio.sleep(RELISTEN_DELAY)

    async def _message(self, payload: str) -> Message | None:
        try:
            message = orjson.loads(payload)
            if isinstance(message, dict) and "stored" in message:
                # ``self._sender`` serves one statement at a time (psycopg's connection lock).
                cursor = await self._sender.execute(
                    "DELETE FROM csms_node_messages WHERE message_id = %s RETURNING body", (message["stored"],)
                )
                row = await cursor.fetchone()
                message = orjson.loads(row[0]) if row else None
        except Exception:
            log.exception("node %s dropped an unreadable message: %.200r", self.node, payload)
            return None
        return message if isinstance(message, dict) else None

    async def send(self, node: str, message: Message) -> None:
        """Sends ``message`` to ``node``'s channel; raises when the database cannot take it."""
        import psycopg

        try:
            await self._send(node, message)
        except psycopg.OperationalError:
            if self._sender is None or not self._sender.closed:
                raise
            await self._send(node, message)  # the connection had broken: once more on a fresh one

    async def _send(self, node: str, message: Message) -> None:
        if self._sender is None or self._sender.closed:
            self._sender = await self._connect("messages")
        payload = orjson.dumps(message).decode()
        if len(payload.encode()) > MAX_NOTIFY_PAYLOAD:
            message_id = uuid.uuid4().hex
            await self._sender.execute(
                "DELETE FROM csms_node_messages WHERE created_at < now() - %s * interval '1 second'",
                (STALE_MESSAGE_SECONDS,),
            )
            await self._sender.execute(
                "INSERT INTO csms_node_messages (message_id, body) VALUES (%s, %s)", (message_id, payload)
            )
            payload = orjson.dumps({"stored": message_id}).decode()
        await self._sender.execute("SELECT pg_notify(%s, %s)", (channel_of(node), payload))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._sender is not None:
            await self._sender.close()
