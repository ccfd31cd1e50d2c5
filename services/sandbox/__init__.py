"""`hsqbo sandbox`: local emulators of the HubSpot and QuickBooks Online APIs (see the submodules'
docstrings).

The shared pieces both emulators are built from: SandboxClock, Faults/FaultConfig, RequestLog, TokenIssuer,
WebhookDispatcher.
"""

from __future__ import annotations

from services.sandbox._clock import SandboxClock
from services.sandbox._faults import FaultConfig, FaultMiddleware, Faults
from services.sandbox._oauth import Grant, OAuthError, TokenIssuer, TokenPair
from services.sandbox._recorder import RecordedRequest, RequestLog
from services.sandbox._webhooks import DispatcherStats, Event, WebhookDispatcher

__all__ = [
    "DispatcherStats",
    "Event",
    "FaultConfig",
    "FaultMiddleware",
    "Faults",
    "Grant",
    "OAuthError",
    "RecordedRequest",
    "RequestLog",
    "SandboxClock",
    "TokenIssuer",
    "TokenPair",
    "WebhookDispatcher",
]
