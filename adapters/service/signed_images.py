"""Firmware images signed once, when they are stored, and SignedUpdateFirmware completed with their signature.

With ``--firmware-signing-key/--firmware-signing-cert`` every image stored
through the API is signed as it is stored (adapters/security/firmware_signing.py)
and its signature kept beside it (FileStore.firmware_signature): algorithm,
base64 signature, the signing certificate (PEM) and the image's sha256. An
image stored without a key loses any signature it had, so a signature always
belongs to the image under its name.

An operator starts a signed update with SignedUpdateFirmware through the
commands endpoint, giving ``firmware.location`` = the image's ``url`` and
leaving out ``signature`` and ``signingCertificate``: the CSMS fills them in
from the image's record. A payload that gives them is sent as given (an image
signed elsewhere).
"""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.security.firmware_signing import FirmwareSigner
from adapters.service.commands import CommandRefused
from adapters.store import FileStore, Received, read_record, remove_record, write_record

Payload = dict[str, Any]
ACTION = "SignedUpdateFirmware"


class SignedImages:
    def __init__(self, files: FileStore, public_url: str, signer: FirmwareSigner | None) -> None:
        self._files = files
        self._public_url = public_url
        self.signer = signer

    async def store(self, received: Received) -> Payload | None:
        """Signs an image received whole and puts it in place with its signature (or none without a key).

        Under the name's lock: the signature beside an image is always its own.
        """
        name = received.stored.name
        record = None
        async with self._files.lock(received.target):
            path = self._files.firmware_signature(name)
            try:
                if self.signer is not None and received.stored.sha256 is not None:
                    signature = self.signer.sign_digest(received.stored.sha256)
                    record = {"algorithm": signature.algorithm, "signature": signature.signature,
                              "signingCertificate": signature.signing_certificate, "sha256": received.stored.sha256}
                    await asyncio.to_thread(write_record, path, record)
                else:
                    await asyncio.to_thread(remove_record, path)
            except BaseException:
                await self._files.discard(received)
                raise
            await self._files.place(received)
        return record

    async def signature(self, name: str) -> Payload | None:
        return await asyncio.to_thread(read_record, self._files.firmware_signature(name))

    async def forget(self, name: str) -> None:
        """An image deleted: its signature goes with it."""
        await asyncio.to_thread(remove_record, self._files.firmware_signature(name))

    def _image_name(self, location: Any) -> str | None:
        prefix = f"{self._public_url}/firmware/"
        if isinstance(location, str) and location.startswith(prefix) and "/" not in location[len(prefix):]:
            return location[len(prefix):] or None
        return None

    async def completed(self, action: str, payload: Payload) -> Payload:
        """A SignedUpdateFirmware of one of our images without signature and certificate: with them.

        Raises CommandRefused (nothing is sent) when that image is not stored or was stored unsigned.
        """
        firmware = payload.get("firmware")
        if action != ACTION or not isinstance(firmware, dict) or "signature" in firmware \
                or "signingCertificate" in firmware:
            return payload
        name = self._image_name(firmware.get("location"))
        if name is None:
            return payload
        if self._files.find(self._files.firmware_dir(), name) is None:
            raise CommandRefused(ACTION, f"there is no firmware image {name!r}")
        record = await self.signature(name)
        if record is None:
            raise CommandRefused(ACTION, f"the firmware image {name!r} is not signed: store it again with "
                                 "--firmware-signing-key and --firmware-signing-cert set")
        return dict(payload, firmware=dict(firmware, signature=record["signature"],
                                           signingCertificate=record["signingCertificate"]))
