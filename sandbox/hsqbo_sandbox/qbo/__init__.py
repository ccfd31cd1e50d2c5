"""The QuickBooks Online emulator (see `_sandbox.py`, `_api.py`, `_auth.py`, `_control.py`)."""

from __future__ import annotations

from hsqbo_sandbox.qbo._events import FORMATS as WEBHOOK_FORMATS
from hsqbo_sandbox.qbo._events import RETRY_DELAYS as WEBHOOK_RETRY_DELAYS
from hsqbo_sandbox.qbo._limits import RealmLimits
from hsqbo_sandbox.qbo._sandbox import QboSandbox

__all__ = ["WEBHOOK_FORMATS", "WEBHOOK_RETRY_DELAYS", "QboSandbox", "RealmLimits"]
