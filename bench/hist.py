"""A small log-bucketed latency histogram that merges across processes.

Values are seconds; buckets are 1% wide (relative), from 1 microsecond up, so a
reported percentile is within 1% of the true value. A histogram travels between
processes as ``{"b": {index: count}, "n": count, "max": seconds, "sum": seconds}``.
"""

from __future__ import annotations

import math
from typing import Any

_BASE = 1.01
_LOG_BASE = math.log(_BASE)
_FLOOR = 1e-6  # seconds: everything below lands in bucket 0


class Histogram:
    __slots__ = ("buckets", "count", "max", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max = 0.0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        index = int(math.log(seconds / _FLOOR) / _LOG_BASE) if seconds > _FLOOR else 0
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Histogram) -> None:
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, p: float) -> float | None:
        """The value below which ``p`` percent of the samples fall (bucket midpoint)."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                if index == 0:
                    return _FLOOR
                low = _FLOOR * _BASE**index
                value = low * (1 + _BASE) / 2
                return min(value, self.max)
        return self.max

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def to_json(self) -> dict[str, Any]:
        return {"b": {str(k): v for k, v in self.buckets.items()}, "n": self.count, "max": self.max, "sum": self.total}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        hist = cls()
        hist.buckets = {int(k): int(v) for k, v in data.get("b", {}).items()}
        hist.count = int(data.get("n", 0))
        hist.max = float(data.get("max", 0.0))
        hist.total = float(data.get("sum", 0.0))
        return hist
