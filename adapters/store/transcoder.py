"""msgpack encoding of stored events and snapshots.

msgpack keeps integer dict keys as integers (connector ids, transaction ids),
so a snapshot and a replay agree; our extension types carry the values msgpack
has no type for.
"""

from __future__ import annotations

import struct
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


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True)


def with_entry(encoded_map: bytes, key: str, value: Any) -> bytes:
    """The msgpack bytes of a dict plus one entry at its end, without re-encoding the dict.

    Byte for byte what encoding the extended dict gives (msgpack writes
    entries in insertion order); only the header's count changes.
    """
    first = encoded_map[0]
    if 0x80 <= first <= 0x8F:
        count, body = first & 0x0F, encoded_map[1:]
    elif first == 0xDE:
        count, body = struct.unpack_from(">H", encoded_map, 1)[0], encoded_map[3:]
    elif first == 0xDF:
        count, body = struct.unpack_from(">I", encoded_map, 1)[0], encoded_map[5:]
    else:
        raise ValueError("not a msgpack map")
    count += 1
    if count <= 0x0F:
        header = bytes([0x80 | count])
    elif count <= 0xFFFF:
        header = b"\xde" + struct.pack(">H", count)
    else:
        header = b"\xdf" + struct.pack(">I", count)
    return header + body + _pack(key) + _pack(value)


class MsgpackTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return _pack(obj)

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
