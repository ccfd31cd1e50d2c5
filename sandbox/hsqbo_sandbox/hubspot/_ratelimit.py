"""HubSpot's API rate limits per portal (USAGE; SEARCH), on the sandbox clock.

- Burst: `burst_max` requests per rolling 10 s (default 100, the Free/Starter private-app figure); over it the
  answer is 429 with policy TEN_SECONDLY_ROLLING. Searches count too (stricter than the OAuth-app exemption).
- Daily: `daily_max` per portal per UTC day (policy DAILY).
- Search: `search_per_second` per portal (default 5) over a rolling second (policy SECONDLY).
Refused requests do not use up the budget. Headers: `X-HubSpot-RateLimit-Interval-Milliseconds`, `-Max`,
`-Remaining` on every non-search answer; `-Daily`, `-Daily-Remaining` only for private-app tokens (not sent for
OAuth-authorised calls); none on search answers.
"""

from __future__ import annotations

import collections
import dataclasses
import uuid
from typing import Any

from hsqbo_sandbox._clock import SandboxClock

BURST_WINDOW_SECONDS = 10.0


@dataclasses.dataclass(slots=True)
class PortalLimits:
    burst_max: int = 100
    daily_max: int = 250_000
    search_per_second: int = 5


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    policy: str | None  # the policy that refused the request
    headers: dict[str, str]


def rate_limit_body(policy: str) -> dict[str, Any]:
    """429 body as HubSpot sends it (USAGE, [3P] mocks for the burst message)."""
    message = {
        "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        "SECONDLY": "You have reached your secondly limit.",
        "DAILY": "You have reached your daily limit.",
    }[policy]
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


class RateLimiter:
    def __init__(self, clock: SandboxClock) -> None:
        self.clock = clock
        self._burst: dict[int, collections.deque[float]] = {}
        self._search: dict[int, collections.deque[float]] = {}
        self._daily: dict[int, tuple[int, int]] = {}  # portal -> (UTC day number, requests that day)

    def admit(self, portal_id: int, limits: PortalLimits, *, search: bool, private_app: bool) -> Verdict:
        now = self.clock.now()
        burst = self._window(self._burst, portal_id, now, BURST_WINDOW_SECONDS)
        searches = self._window(self._search, portal_id, now, 1.0) if search else None
        day = int(now // 86400)
        used_day, used_today = self._daily.get(portal_id, (day, 0))
        if used_day != day:
            used_today = 0
        policy = None
        if used_today >= limits.daily_max:
            policy = "DAILY"
        elif len(burst) >= limits.burst_max:
            policy = "TEN_SECONDLY_ROLLING"
        elif searches is not None and len(searches) >= limits.search_per_second:
            policy = "SECONDLY"
        if policy is None:
            burst.append(now)
            if searches is not None:
                searches.append(now)
            used_today += 1
            self._daily[portal_id] = (day, used_today)
        headers: dict[str, str] = {}
        if not search:
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(BURST_WINDOW_SECONDS * 1000)),
                "X-HubSpot-RateLimit-Max": str(limits.burst_max),
                "X-HubSpot-RateLimit-Remaining": str(max(0, limits.burst_max - len(burst))),
            }
            if private_app:
                headers["X-HubSpot-RateLimit-Daily"] = str(limits.daily_max)
                headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, limits.daily_max - used_today))
        return Verdict(policy is None, policy, headers)

    @staticmethod
    def _window(
        windows: dict[int, collections.deque[float]], portal_id: int, now: float, width: float
    ) -> collections.deque[float]:
        window = windows.setdefault(portal_id, collections.deque())
        while window and window[0] <= now - width:
            window.popleft()
        return window
