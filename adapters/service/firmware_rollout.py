"""Where a firmware rollout stands: per charge point, its version and its last UpdateFirmware and SignedUpdateFirmware.

``state`` is the state of whichever of the two was sent last (pending,
installing, installed, failed); ``counts`` count those.
"""

from __future__ import annotations

from typing import Any, Iterable

from adapters.service.chargepoints import ChargePoints


async def rollout(charge_points: ChargePoints, charge_point_ids: Iterable[str]) -> dict[str, Any]:
    """These charge points' firmware and update state, and how many are in each state."""
    rows: list[dict[str, Any]] = []
    for charge_point_id in charge_point_ids:
        cp = await charge_points.read(charge_point_id)
        update, signed = cp.firmware_update, cp.signed_firmware_update
        latest: dict[str, Any] | None = dict(update) if update else None
        if signed is not None and (update is None or (signed.get("sentAt") or "") >= update["sentAt"]):
            latest = signed
        rows.append(
            {
                "chargePointId": cp.id,
                "online": cp.online,
                "firmwareVersion": (cp.boot_info or {}).get("firmwareVersion"),
                "firmwareStatus": cp.firmware_status,
                "state": latest["state"] if latest else None,
                "lastUpdate": {k: v for k, v in update.items() if k != "messageId"} if update else None,
                "lastSignedUpdate": signed,
            }
        )
    counts: dict[str, int] = {}
    for row in rows:
        if row["state"] is not None:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
    return {"chargePoints": rows, "counts": counts}
