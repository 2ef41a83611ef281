"""msgpack encoding of stored events and snapshots.

msgpack keeps integer dict keys as integers (connector ids, transaction ids),
so a snapshot and a replay agree; our extension types carry the values msgpack
has no type for.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import Transcoder

DATETIME, UUID_BYTES, DECIMAL = 1, 2, 3


def _default(value: Any) -> msgpack.ExtType:
    if isinstance(value, datetime):
        return msgpack.ExtType(DATETIME, value.isoformat().encode())
    if isinstance(value, UUID):
        return msgpack.ExtType(UUID_BYTES, value.bytes)
    if isinstance(value, Decimal):
        return msgpack.ExtType(DECIMAL, str(value).encode())
    if isinstance(value, (set, frozenset)):
        return sorted(value)  # type: ignore[return-value]
    raise TypeError(f"cannot store a {type(value).__name__} in an event")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == DATETIME:
        return datetime.fromisoformat(data.decode())
    if code == UUID_BYTES:
        return UUID(bytes=data)
    if code == DECIMAL:
        return Decimal(data.decode())
    return msgpack.ExtType(code, data)


class MsgpackTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return msgpack.packb(obj, default=_default, use_bin_type=True)

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
