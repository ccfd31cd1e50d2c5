"""The portals (HubSpot accounts) a sandbox serves, each with its store, rate limits and search result cap."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from services.sandbox._clock import SandboxClock
from services.sandbox.hubspot._errors import not_found
from services.sandbox.hubspot._ratelimit import PortalLimits
from services.sandbox.hubspot._store import Change, Portal

DEFAULT_SEARCH_RESULT_CAP = 10_000


@dataclasses.dataclass(slots=True)
class Account:
    portal: Portal
    limits: PortalLimits
    search_result_cap: int = DEFAULT_SEARCH_RESULT_CAP

    @property
    def portal_id(self) -> int:
        return self.portal.portal_id

    def settings(self) -> dict[str, int | bool]:
        return {
            "portal_id": self.portal_id,
            "burst_limit": self.limits.burst_max,
            "daily_limit": self.limits.daily_max,
            "search_per_second": self.limits.search_per_second,
            "search_result_cap": self.search_result_cap,
            "allow_open_invoice_delete": self.portal.allow_open_invoice_delete,
        }

    def configure(
        self,
        *,
        burst_limit: int | None = None,
        daily_limit: int | None = None,
        search_per_second: int | None = None,
        search_result_cap: int | None = None,
        allow_open_invoice_delete: bool | None = None,
    ) -> None:
        for value in (burst_limit, daily_limit, search_per_second, search_result_cap):
            if value is not None and value < 1:
                raise ValueError("limits must be positive integers")
        if burst_limit is not None:
            self.limits.burst_max = burst_limit
        if daily_limit is not None:
            self.limits.daily_max = daily_limit
        if search_per_second is not None:
            self.limits.search_per_second = search_per_second
        if search_result_cap is not None:
            self.search_result_cap = search_result_cap
        if allow_open_invoice_delete is not None:
            self.portal.allow_open_invoice_delete = allow_open_invoice_delete


class Accounts:
    def __init__(self, clock: SandboxClock, listener: Callable[[int, Change], None], *, first_portal_id: int = 2001):
        self.clock = clock
        self.listener = listener
        self._accounts: dict[int, Account] = {}
        self._next_portal_id = first_portal_id

    def create(self, portal_id: int | None = None) -> Account:
        if portal_id is None:
            portal_id = self._next_portal_id
        if portal_id in self._accounts:
            raise ValueError(f"portal {portal_id} already exists")
        self._next_portal_id = max(self._next_portal_id, portal_id + 1)
        portal = Portal(portal_id, self.clock, lambda change: self.listener(portal_id, change))
        account = Account(portal, PortalLimits())
        self._accounts[portal_id] = account
        return account

    def get(self, portal_id: int) -> Account:
        account = self._accounts.get(portal_id)
        if account is None:
            raise not_found(f"portal {portal_id} does not exist")
        return account

    def clear(self) -> None:
        """Forget every portal (a state load replaces them)."""
        self._accounts.clear()

    def find(self, portal_id: int) -> Account | None:
        return self._accounts.get(portal_id)

    def first(self) -> Account:
        """The first portal, created when there is none (a bare sandbox still answers OAuth installs)."""
        return next(iter(self._accounts.values())) if self._accounts else self.create()

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))
