"""Files beside the store: firmware images for charge points, diagnostics and logs from them.

The data directory holds ``firmware/{name}`` (and each image's signature
beside it, ``firmware/.{name}.signature.json``, when images are signed),
``diagnostics/{chargePointId}/{fileName}`` and ``logs/{chargePointId}/{fileName}``. Names come from URLs and upload
forms, so they are sanitised to one plain path segment; bodies are streamed
to a temporary file with a size limit and moved into place only when whole,
so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import stat
import tempfile
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AsyncIterator
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


@dataclass(frozen=True)
class Received:
    """A body written whole to a temporary file, waiting to be moved to ``target``."""

    stored: StoredFile
    temporary: Path
    target: Path


class FileStore:
    def __init__(self, root: str | Path, max_size: int) -> None:
        self.root = Path(root)
        self.max_size = max_size
        # Held only while someone waits on or holds one, so they never pile up.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def firmware_dir(self) -> Path:
        return self.root / "firmware"

    def diagnostics_dir(self, charge_point_id: str) -> Path:
        return self._charge_point_dir("diagnostics", charge_point_id)

    def firmware_signature(self, name: str) -> Path:
        """Where an image's signature is kept: beside it, hidden, so never listed or served as an image."""
        return self.firmware_dir() / f".{safe_name(name)}.signature.json"

    def logs_dir(self, charge_point_id: str) -> Path:
        return self._charge_point_dir("logs", charge_point_id)

    def _charge_point_dir(self, kind: str, charge_point_id: str) -> Path:
        # Percent-encoded (dots too): one folder per charge point, never shared
        # ("cp:1" and "cp_1" differ) and never a path such as "..".
        return self.root / kind / quote(charge_point_id, safe="").replace(".", "%2E")

    async def receive(self, directory: Path, name: str, chunks: AsyncIterator[bytes]) -> Received:
        """Streams the body to a hidden temporary file in ``directory``, whole and synced, not yet in place.

        Raises FileTooLarge past the limit (nothing is left behind then); the
        caller places the file (``place``) or throws it away (``discard``).
        """
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
                # From the open file: the name it will get may be replaced or deleted meanwhile.
                modified = _format_mtime(os.fstat(target.fileno()).st_mtime)
        except BaseException:
            await asyncio.to_thread(_remove, temporary)
            raise
        return Received(StoredFile(name, size, modified, digest.hexdigest()), Path(temporary), directory / name)

    async def place(self, received: Received) -> None:
        """Moves a received file to its name (replacing what was there, atomically)."""
        try:
            await asyncio.to_thread(os.replace, received.temporary, received.target)
        except BaseException:
            await self.discard(received)
            raise

    async def discard(self, received: Received) -> None:
        await asyncio.to_thread(_remove, str(received.temporary))

    def lock(self, path: Path) -> asyncio.Lock:
        """One lock per file name on this node: whoever holds it records and places that name in turn."""
        key = str(path)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def save(self, directory: Path, name: str, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Stores the stream as ``directory/name``; raises FileTooLarge past the limit."""
        received = await self.receive(directory, name, chunks)
        await self.place(received)
        return received.stored

    def find(self, directory: Path, name: str) -> Path | None:
        try:
            path = directory / safe_name(name)
        except BadFileName:
            return None
        return path if path.is_file() else None

    def listing(self, directory: Path) -> list[StoredFile]:
        if not directory.is_dir():
            return []
        listing = []
        for path in sorted(directory.iterdir()):
            if path.name.startswith("."):
                continue
            try:  # deleted or replaced since iterdir: what is there now, or nothing
                status = path.stat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(status.st_mode):
                listing.append(StoredFile(path.name, status.st_size, _format_mtime(status.st_mtime)))
        return listing

    def delete(self, directory: Path, name: str) -> bool:
        path = self.find(directory, name)
        if path is None:
            return False
        try:
            path.unlink()
        except FileNotFoundError:  # deleted by someone else a moment ago
            return False
        return True


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Writes a small JSON record whole (a temporary file moved over the name), synced."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".record-")
    try:
        with os.fdopen(handle, "wb") as target:
            target.write(json.dumps(record).encode())
            os.fsync(target.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return None


def remove_record(path: Path) -> None:
    _remove(str(path))


def _format_mtime(mtime: float) -> str:
    return format_ocpp_time(datetime.fromtimestamp(mtime, UTC))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
