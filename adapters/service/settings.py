"""What an operator sets on the command line, and the clock the service reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    heartbeat_interval: int = 300
    call_timeout: float = 30.0
    auto_register: bool = False
    ping_interval: float = 60.0
    max_frame_size: int = 256 * 1024
    data_dir: str = "csms-files"  # firmware images and diagnostics uploads
    max_file_size: int = 64 * 1024 * 1024
