"""Setting, raising and lowering a charge point's security profile (domain/security_profile.py).

An operator sets the profile and the certificate name with the registration
(lowering is allowed there, and recorded as such). Raising a connected charge
point goes through OCPP: what the higher profile needs is checked first, then
ChangeConfiguration SecurityProfile is sent as any operator command is; the
domain records the raise beside an Accepted answer.
"""

from __future__ import annotations

from typing import Any

from adapters.service.chargepoints import ChargePoints
from adapters.service.commands import Commands
from adapters.service.settings import Clock
from adapters.store import NotRegistered
from domain import security_profile

UNCHANGED: Any = object()  # certificateName absent from the registration


class SecurityProfiles:
    def __init__(self, charge_points: ChargePoints, commands: Commands, tls_served: bool, clock: Clock) -> None:
        self._charge_points = charge_points
        self._commands = commands
        self._tls_served = tls_served
        self._now = clock

    async def check_registration(self, charge_point_id: str, profile: int | None, password_given: bool) -> None:
        """Refuses (ProfileRefused) a registration's profile before anything of it is stored."""
        if profile is None:
            return
        try:
            has_password = (await self._charge_points.read(charge_point_id)).has_password
        except NotRegistered:
            has_password = False
        refusal = security_profile.registration_refusal(profile, has_password or password_given, self._tls_served)
        if refusal is not None:
            raise refusal

    async def configure(self, charge_point_id: str, profile: int | None, certificate_name: Any = UNCHANGED) -> None:
        """The registration's profile and certificate name, recorded when they change."""
        now = self._now()

        def change(cp: Any) -> None:
            if profile is not None:
                security_profile.set_by_operator(cp, profile, self._tls_served, now)
            if certificate_name is not UNCHANGED:
                security_profile.set_certificate_name(cp, certificate_name, now)

        if profile is not None or certificate_name is not UNCHANGED:
            await self._charge_points.change(charge_point_id, change)

    async def raise_to(self, charge_point_id: str, profile: int) -> dict[str, Any]:
        """Checks what ``profile`` needs, then sends ChangeConfiguration SecurityProfile; the charge point's reply.

        Raises ProfileRefused, and what a command raises (NotConnected, CallRejected, ...).
        """
        refusal = security_profile.raise_refusal(await self._charge_points.read(charge_point_id), profile,
                                                 self._tls_served)
        if refusal is not None:
            raise refusal
        return await self._commands.send(charge_point_id, "ChangeConfiguration",
                                         {"key": "SecurityProfile", "value": str(profile)})
