"""A WebSocket client on a plain socket, for tests that decide when it reads and writes.

`ChargePointClient` (aiohttp) reads everything the server sends as it comes and
buffers what it writes; this one reads only when asked and writes only what
the kernel takes at once, so a test can stop reading and watch TCP push back.
It speaks just enough RFC 6455 for that: the handshake, masked text frames out,
unmasked frames in.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import struct
from dataclasses import dataclass

TEXT, CLOSE = 0x1, 0x8


def text_frame(text: str) -> bytes:
    """One masked text frame, as a client must send it."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | TEXT, 0x80 | length)
    elif length < 2**16:
        header = struct.pack("!BBH", 0x80 | TEXT, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, length)
    keys = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(length, "big")
    return header + mask + masked


@dataclass(frozen=True)
class Queues:
    """Bytes waiting in the kernel on each side of one connection (/proc/net/tcp)."""

    client_unsent: int  # written by the client, not yet taken by the server's kernel
    server_unread: int  # in the server's receive queue, not yet read by the server
    server_unsent: int  # written by the server, not yet taken by the client's kernel
    client_unread: int  # in the client's receive queue, not yet read by the client


class RawWebSocket:
    def __init__(self, port: int, path: str, protocol: str = "ocpp1.6", receive_buffer: int | None = None) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connecting, so the window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        ).encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            assert chunk, f"the server closed during the handshake: {response!r}"
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.sock.setblocking(False)
        self.local_port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    # ---- writing, never more than the kernel takes -----------------------------------------------

    def send_some(self, data: memoryview) -> int:
        """Writes what the socket takes now; returns how many bytes (0 when it would block)."""
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    def writable(self, timeout: float) -> bool:
        return bool(select.select([], [self.sock], [], timeout)[1])

    # ---- reading, only when asked ---------------------------------------------------------------

    def read_frames(self, timeout: float) -> list[str]:
        """The text frames that arrived within ``timeout`` (waiting only while none has).

        Pings are not answered (a pong could land in the middle of a frame being
        written): a test with this client ends well within the ping interval."""
        if not self._frames_buffered() and select.select([self.sock], [], [], timeout)[0]:
            while True:
                try:
                    chunk = self.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                assert chunk, "the server closed the connection"
                self._buffer += chunk
        texts = []
        while (frame := self._next_frame()) is not None:
            opcode, payload = frame
            if opcode == TEXT:
                texts.append(payload.decode())
            elif opcode == CLOSE:
                raise ConnectionError(f"the server closed the connection: {payload!r}")
        return texts

    def _frames_buffered(self) -> bool:
        return self._parse_header() is not None

    def _parse_header(self) -> tuple[int, int, int] | None:
        """(opcode, header length, payload length) of the complete frame at the buffer's start, if any."""
        data = self._buffer
        if len(data) < 2:
            return None
        opcode, length, header = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, header = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, header = struct.unpack("!Q", data[2:10])[0], 10
        return (opcode, header, length) if len(data) >= header + length else None

    def _next_frame(self) -> tuple[int, bytes] | None:
        parsed = self._parse_header()
        if parsed is None:
            return None
        opcode, header, length = parsed
        payload = bytes(self._buffer[header:header + length])
        del self._buffer[:header + length]
        return opcode, payload

    # ---- what the kernel holds ----------------------------------------------------------------------

    def queues(self) -> Queues:
        """Both ends' socket queues, read from /proc/net/tcp (the server runs on this machine)."""
        client, server = f"0100007F:{self.local_port:04X}", f"0100007F:{self.port:04X}"
        found: dict[tuple[str, str], tuple[int, int]] = {}
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                tx, rx = (int(value, 16) for value in fields[4].split(":"))
                found[(fields[1], fields[2])] = (tx, rx)
        client_tx, client_rx = found[(client, server)]
        server_tx, server_rx = found[(server, client)]
        return Queues(client_unsent=client_tx, server_unread=server_rx, server_unsent=server_tx,
                      client_unread=client_rx)

