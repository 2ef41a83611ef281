"""The shortest end-to-end story: register, connect, boot, heartbeat."""

from __future__ import annotations

from tests.ocpp_client import ChargePointClient, Operator


async def test_a_registered_charge_point_boots_and_is_seen(server):
    async with Operator(server.http) as operator:
        await operator.register("CP-SMOKE")
        async with ChargePointClient(f"ws://127.0.0.1:{server.port}", "CP-SMOKE") as cp:
            boot = await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One"})
            assert boot["status"] == "Accepted" and boot["interval"] == 300
            beat = await cp.call("Heartbeat", {})
            assert beat["currentTime"].endswith("Z")
        status = await operator.get("/api/chargepoints/CP-SMOKE")
        assert status["vendor"] == "Acme"
        assert status["online"] is False
        types = [event["type"] for event in await operator.events("CP-SMOKE")]
        assert types == ["Registered", "Connected", "Booted", "HeartbeatReceived", "Disconnected"]
