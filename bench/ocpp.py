"""A lean OCPP 1.6-J charge point for load generation (no server code shared).

One coroutine drives one charge point: it sends a CALL, then reads until the
CALLRESULT/CALLERROR with the same message id arrives (OCPP-J allows one
outstanding CALL per direction). A CALL from the central system is answered
with a CALLERROR NotImplemented; the benchmark's server never sends one.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any, Callable

import aiohttp
import orjson

SUBPROTOCOL = "ocpp1.6"
CALL, CALLRESULT, CALLERROR = 2, 3, 4
DEFAULT_ID_TAG = "BENCHTAG"
DEFAULT_MIX = "MeterValues=60,Heartbeat=30,StatusNotification=10"
SUPPORTED_ACTIONS = ("MeterValues", "Heartbeat", "StatusNotification", "Authorize", "DataTransfer")

now = time.monotonic


class Dropped(Exception):
    """The WebSocket closed (or failed) under us."""


class CallFailed(Exception):
    """A CALLERROR, or a CALLRESULT that says no (e.g. a boot not Accepted)."""

    def __init__(self, action: str, code: str, description: str = "") -> None:
        super().__init__(f"{action}: {code} {description}".strip())
        self.action = action
        self.code = code


def ocpp_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_mix(text: str) -> list[tuple[str, float]]:
    """``"MeterValues=60,Heartbeat=30,StatusNotification=10"`` -> [(action, weight)]."""
    mix = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        action, _, weight = part.partition("=")
        action = action.strip()
        if action not in SUPPORTED_ACTIONS:
            raise ValueError(f"unsupported action {action!r} in mix (use {', '.join(SUPPORTED_ACTIONS)})")
        mix.append((action, float(weight or 1)))
    if not mix or sum(w for _, w in mix) <= 0:
        raise ValueError(f"empty mix {text!r}")
    return mix


class ChargePoint:
    """One simulated charge point on one WebSocket."""

    def __init__(self, base_url: str, charge_point_id: str, id_tag: str = DEFAULT_ID_TAG,
                 meter_samples: int = 10) -> None:
        self.id = charge_point_id
        self.url = f"{base_url}/ocpp/{charge_point_id}"
        self.id_tag = id_tag
        self.meter_samples = meter_samples
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.transaction_id: int | None = None
        self.heartbeat_interval = 300
        self.energy_wh = random.randint(0, 10_000_000)
        self._counter = 0
        self._send_frame: Callable[..., Any] | None = None

    # ---- connection ------------------------------------------------------------

    async def connect(self, session: aiohttp.ClientSession) -> None:
        self.ws = await session.ws_connect(self.url, protocols=(SUBPROTOCOL,), autoclose=True, autoping=True,
                                           max_msg_size=0)
        if self.ws.protocol != SUBPROTOCOL:
            await self.ws.close()
            raise CallFailed("connect", "NoSubprotocol", f"server chose {self.ws.protocol!r}")
        self._send_frame = getattr(self.ws, "send_frame", None)

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                await self.ws.close()
            except Exception:
                pass

    # ---- calls -----------------------------------------------------------------

    async def _send(self, frame: list[Any]) -> None:
        data = orjson.dumps(frame)
        assert self.ws is not None
        try:
            if self._send_frame is not None:
                await self._send_frame(data, aiohttp.WSMsgType.TEXT)
            else:
                await self.ws.send_str(data.decode())
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as error:
            raise Dropped(f"send failed: {error!r}") from None

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends one CALL and returns the CALLRESULT payload; CallFailed on a CALLERROR."""
        ws = self.ws
        if ws is None or ws.closed:
            raise Dropped("not connected")
        self._counter += 1
        message_id = str(self._counter)
        await self._send([CALL, message_id, action, payload])
        while True:
            message = await ws.receive()
            frame = self._frame_of(message)
            if frame is None:
                continue
            kind = frame[0]
            if kind == CALL:
                await self._refuse(frame)
                continue
            if frame[1] != message_id:
                continue  # a stray answer; the next one is ours
            if kind == CALLRESULT:
                return frame[2]  # type: ignore[no-any-return]
            raise CallFailed(action, str(frame[2]), str(frame[3]) if len(frame) > 3 else "")

    async def idle(self, seconds: float) -> None:
        """Waits, still reading the socket (pings, calls from the central system, a close)."""
        deadline = now() + seconds
        ws = self.ws
        if ws is None or ws.closed:
            raise Dropped("not connected")
        while True:
            remaining = deadline - now()
            if remaining <= 0:
                return
            try:
                message = await ws.receive(timeout=remaining)
            except TimeoutError:
                return
            frame = self._frame_of(message)
            if frame is not None and frame[0] == CALL:
                await self._refuse(frame)

    def _frame_of(self, message: aiohttp.WSMessage) -> list[Any] | None:
        if message.type == aiohttp.WSMsgType.TEXT:
            try:
                frame = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                return None
            return frame if isinstance(frame, list) and len(frame) >= 3 else None
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
            raise Dropped(f"{message.type.name} {message.data!r}")
        return None

    async def _refuse(self, frame: list[Any]) -> None:
        await self._send([CALLERROR, frame[1], "NotImplemented", "benchmark charge point", {}])

    # ---- the OCPP story ----------------------------------------------------------

    async def boot(self) -> None:
        reply = await self.call("BootNotification", {
            "chargePointVendor": "AmpLedgerBench",
            "chargePointModel": "LoadGen",
            "chargePointSerialNumber": self.id[-25:],
            "firmwareVersion": "1.0.0",
        })
        if reply.get("status") != "Accepted":
            raise CallFailed("BootNotification", str(reply.get("status")))
        interval = reply.get("interval")
        if isinstance(interval, int) and interval > 0:
            self.heartbeat_interval = interval

    async def start_transaction(self) -> None:
        await self.call("StatusNotification", self.status_payload("Preparing"))
        reply = await self.call("StartTransaction", {
            "connectorId": 1,
            "idTag": self.id_tag,
            "meterStart": self.energy_wh,
            "timestamp": ocpp_time(),
        })
        self.transaction_id = int(reply["transactionId"])
        await self.call("StatusNotification", self.status_payload("Charging"))

    def status_payload(self, status: str = "Charging") -> dict[str, Any]:
        return {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": ocpp_time()}

    def meter_values_payload(self) -> dict[str, Any]:
        self.energy_wh += random.randint(1, 50)
        power = random.uniform(3000, 22000)
        samples: list[dict[str, Any]] = [
            {"value": str(self.energy_wh), "context": "Sample.Periodic",
             "measurand": "Energy.Active.Import.Register", "unit": "Wh", "location": "Outlet"},
            {"value": f"{power:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
        ]
        for phase in ("L1", "L2", "L3"):
            samples.append({"value": f"{power / 690:.2f}", "measurand": "Current.Import", "phase": phase, "unit": "A"})
        for phase in ("L1-N", "L2-N", "L3-N"):
            samples.append({"value": f"{random.uniform(225, 235):.1f}", "measurand": "Voltage", "phase": phase,
                            "unit": "V"})
        samples.append({"value": str(random.randint(10, 95)), "measurand": "SoC", "unit": "Percent"})
        samples.append({"value": f"{random.uniform(20, 45):.1f}", "measurand": "Temperature", "unit": "Celsius"})
        while len(samples) < self.meter_samples:
            samples.append({"value": f"{power / 230:.2f}", "measurand": "Current.Offered", "unit": "A"})
        payload: dict[str, Any] = {
            "connectorId": 1,
            "meterValue": [{"timestamp": ocpp_time(), "sampledValue": samples[: self.meter_samples]}],
        }
        if self.transaction_id is not None:
            payload["transactionId"] = self.transaction_id
        return payload

    def payload_for(self, action: str) -> dict[str, Any]:
        if action == "MeterValues":
            return self.meter_values_payload()
        if action == "Heartbeat":
            return {}
        if action == "StatusNotification":
            return self.status_payload("Charging" if self.transaction_id is not None else "Available")
        if action == "Authorize":
            return {"idTag": self.id_tag}
        if action == "DataTransfer":
            return {"vendorId": "AmpLedgerBench", "messageId": "ping", "data": "x"}
        raise ValueError(action)
