"""Which `csms serve` processes are running, and whether the running test may make them log a traceback.

A module of its own: pytest loads tests/conftest.py as `conftest` while tests import
it as `tests.conftest`, two copies whose globals would differ; this one is imported once.
"""

from __future__ import annotations

from typing import Any

# Servers started and not yet checked (tests.conftest.Server, of either copy).
LIVE_SERVERS: list[Any] = []
# The reason the running test gave with @pytest.mark.logs_traceback("why"), if any.
TRACEBACK_EXCUSE: list[str] = []
