"""Requests between nodes and their answers, over the store's NOTIFY channels.

A request names its kind, its id and the node that asks; the node asked
acknowledges it at once ("accepted"), runs the handler for its kind, and
sends the handler's answer back on the asking node's channel. The asker
waits for the acknowledgement within a deadline (a node that does not
acknowledge is dead or cut off), then for the answer for as long as the
node asked still holds what the request is about.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Awaitable, Callable

from adapters.store import Message, NodeChannel

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[Message]]

ANSWER_CHECK_SECONDS = 1.0  # while waiting for an answer, how often to ask whether waiting still makes sense


class Unanswered(Exception):
    """The node asked did not acknowledge or answer in time, or stopped holding what was asked of it."""


class NodeBus:
    def __init__(self, channel: NodeChannel) -> None:
        self._channel = channel
        self.node = channel.node
        self._handlers: dict[str, Handler] = {}
        self._waiting: dict[str, asyncio.Queue[Message]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def handle(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def start(self) -> None:
        await self._channel.start(self._deliver)

    async def stop(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._channel.stop()

    def _deliver(self, message: Message) -> None:
        kind = message.get("kind")
        if kind in ("accepted", "answer"):
            waiting = self._waiting.get(str(message.get("id")))
            if waiting is not None:
                waiting.put_nowait(message)
            return
        handler = self._handlers.get(str(kind))
        if handler is None or not isinstance(message.get("from"), str):
            log.warning("node %s: dropped a message it has no use for: %.200r", self.node, message)
            return
        task = asyncio.get_running_loop().create_task(self._serve(handler, message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _serve(self, handler: Handler, message: Message) -> None:
        asker, request_id = message["from"], message.get("id")
        try:
            await self._channel.send(asker, {"kind": "accepted", "id": request_id})
            answer = await handler(message)
            await self._channel.send(asker, {**answer, "kind": "answer", "id": request_id})
        except Exception:
            log.exception("node %s could not serve %s from %s", self.node, message.get("kind"), asker)

    async def request(self, node: str, kind: str, body: Message, *, acknowledged_within: float,
                      answered_within: float | None = None,
                      still_worth_it: Callable[[], Awaitable[bool]] | None = None) -> Message:
        """Asks ``node`` and returns its answer; raises Unanswered (or the store's failure to send)."""
        request_id = uuid.uuid4().hex
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._waiting[request_id] = queue
        loop = asyncio.get_running_loop()
        deadline = None if answered_within is None else loop.time() + answered_within
        try:
            await self._channel.send(node, {**body, "kind": kind, "id": request_id, "from": self.node})
            try:
                received = await asyncio.wait_for(queue.get(), acknowledged_within)
            except TimeoutError:
                raise Unanswered(f"node {node} did not acknowledge {kind} within {acknowledged_within:g} s") from None
            while received["kind"] != "answer":
                wait = ANSWER_CHECK_SECONDS if deadline is None else min(ANSWER_CHECK_SECONDS, deadline - loop.time())
                if wait <= 0:
                    raise Unanswered(f"node {node} did not answer {kind} within {answered_within:g} s")
                try:
                    received = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if still_worth_it is not None and not await still_worth_it():
                        raise Unanswered(f"node {node} no longer holds what {kind} was about") from None
            return received
        finally:
            del self._waiting[request_id]
