"""Files beside the store: firmware images for charge points, diagnostics from them.

The data directory holds ``firmware/{name}`` and
``diagnostics/{chargePointId}/{fileName}``. Names come from URLs and upload
forms, so they are sanitised to one plain path segment; bodies are streamed
to a temporary file with a size limit and moved into place only when whole,
so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import quote

from domain.timestamps import format_ocpp_time

UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 200


class BadFileName(ValueError):
    pass


class FileTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    modified: str
    sha256: str | None = None

    def view(self) -> dict[str, object]:
        view: dict[str, object] = {"name": self.name, "size": self.size, "modified": self.modified}
        if self.sha256 is not None:
            view["sha256"] = self.sha256
        return view


def safe_name(name: str) -> str:
    """One harmless path segment from a name someone else chose.

    Anything but letters, digits, dot, dash and underscore becomes "_"; leading
    dots go, so no name is hidden or climbs out with "..".
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = UNSAFE.sub("_", base).lstrip(".")[:MAX_NAME]
    if not cleaned.strip("_"):
        raise BadFileName(f"{name!r} is not a usable file name")
    return cleaned


class FileStore:
    def __init__(self, root: str | Path, max_size: int) -> None:
        self.root = Path(root)
        self.max_size = max_size

    def firmware_dir(self) -> Path:
        return self.root / "firmware"

    def diagnostics_dir(self, charge_point_id: str) -> Path:
        # Percent-encoded (dots too): one folder per charge point, never shared
        # ("cp:1" and "cp_1" differ) and never a path such as "..".
        return self.root / "diagnostics" / quote(charge_point_id, safe="").replace(".", "%2E")

    async def save(self, directory: Path, name: str, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Stores the stream as ``directory/name``; raises FileTooLarge past the limit."""
        name = safe_name(name)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        handle, temporary = await asyncio.to_thread(tempfile.mkstemp, dir=directory, prefix=".upload-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(handle, "wb") as target:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_size:
                        raise FileTooLarge(f"larger than the limit of {self.max_size} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(target.write, chunk)
                await asyncio.to_thread(os.fsync, target.fileno())
            await asyncio.to_thread(os.replace, temporary, directory / name)
        except BaseException:
            await asyncio.to_thread(_remove, temporary)
            raise
        return StoredFile(name, size, _modified(directory / name), digest.hexdigest())

    def find(self, directory: Path, name: str) -> Path | None:
        try:
            path = directory / safe_name(name)
        except BadFileName:
            return None
        return path if path.is_file() else None

    def listing(self, directory: Path) -> list[StoredFile]:
        if not directory.is_dir():
            return []
        return [
            StoredFile(path.name, path.stat().st_size, _modified(path))
            for path in sorted(directory.iterdir())
            if path.is_file() and not path.name.startswith(".")
        ]

    def delete(self, directory: Path, name: str) -> bool:
        path = self.find(directory, name)
        if path is None:
            return False
        path.unlink()
        return True


def _modified(path: Path) -> str:
    return format_ocpp_time(datetime.fromtimestamp(path.stat().st_mtime, UTC))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
