"""TokenIssuer: the OAuth 2.0 bookkeeping both emulators share; the wire format and error bodies stay in each.

- Clients are registered with their secret (`register_client`) and checked with `check_client`.
- Authorization codes are single use and short-lived. Reusing one fails and, as RFC 6749 §4.1.2 advises,
  revokes the tokens it produced.
- Access tokens expire `access_ttl_seconds` after issue (sandbox clock).
- Refresh tokens roll: each refresh issues a new one with a full lifetime. With `rotate_refresh_tokens` the
  old one keeps working for `refresh_grace_seconds` and answers with the same successor (so two racing
  refreshers end up with one token), then fails. Without rotation (HubSpot) the same refresh token is returned
  every time.
- Static tokens (HubSpot private-app tokens) never expire and are registered directly.
- `revoke(token)` accepts an access or a refresh token; revoking a refresh token ends its whole grant.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from hsqbo_sandbox._clock import SandboxClock


class OAuthError(Exception):
    """An RFC 6749 error code (`invalid_grant`, `invalid_client`, ...); the emulator renders the body."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclasses.dataclass(slots=True)
class Grant:
    """One consent: an account connected to a client. Every token belongs to one grant."""

    grant_id: str
    account_id: str
    client_id: str
    scope: str
    revoked: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str | None
    expires_in: int  # seconds until the access token expires
    refresh_expires_in: int | None  # seconds until the refresh token expires (None: static token)
    account_id: str
    scope: str


@dataclasses.dataclass(slots=True)
class _Code:
    grant: Grant
    redirect_uri: str | None
    expires_at: float
    used: bool = False


@dataclasses.dataclass(slots=True)
class _Token:
    grant: Grant
    expires_at: float | None  # None: never (static)
    successor: str | None = None  # refresh tokens: the token that replaced this one
    superseded_at: float | None = None


class TokenIssuer:
    def __init__(
        self,
        clock: SandboxClock,
        *,
        access_ttl_seconds: int = 3600,
        refresh_ttl_seconds: int = 100 * 86400,
        refresh_grace_seconds: float = 60.0,
        rotate_refresh_tokens: bool = True,
        code_ttl_seconds: float = 600.0,
        token_prefix: str = "",
    ) -> None:
        self.clock = clock
        self.access_ttl_seconds = access_ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds
        self.refresh_grace_seconds = refresh_grace_seconds
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.code_ttl_seconds = code_ttl_seconds
        self.token_prefix = token_prefix
        self._clients: dict[str, str] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}

    # clients

    def register_client(self, client_id: str, client_secret: str) -> None:
        self._clients[client_id] = client_secret

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        known = self._clients.get(client_id or "")
        if known is None or client_secret is None or not secrets.compare_digest(known, client_secret):
            raise OAuthError("invalid_client", "client authentication failed")

    def is_client(self, client_id: str) -> bool:
        return client_id in self._clients

    # authorization code grant

    def issue_code(self, account_id: str, client_id: str, *, scope: str = "", redirect_uri: str | None = None) -> str:
        code = self._new_token("code")
        grant = Grant(self._new_token("grant"), account_id, client_id, scope)
        self._codes[code] = _Code(grant, redirect_uri, self.clock.now() + self.code_ttl_seconds)
        return code

    def exchange_code(self, code: str, client_id: str, *, redirect_uri: str | None = None) -> TokenPair:
        entry = self._codes.get(code)
        if entry is None or entry.grant.client_id != client_id:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if entry.used:
            entry.grant.revoked = True
            raise OAuthError("invalid_grant", "authorization code already used")
        if self.clock.now() >= entry.expires_at:
            raise OAuthError("invalid_grant", "authorization code expired")
        if entry.redirect_uri is not None and redirect_uri != entry.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        entry.used = True
        return self._issue_pair(entry.grant)

    # direct issue (control surface, tests) and static tokens

    def issue(self, account_id: str, client_id: str, *, scope: str = "") -> TokenPair:
        return self._issue_pair(Grant(self._new_token("grant"), account_id, client_id, scope))

    def register_static(self, token: str, account_id: str, *, client_id: str = "", scope: str = "") -> None:
        self._access[token] = _Token(Grant(self._new_token("grant"), account_id, client_id, scope), None)

    # refresh

    def refresh(self, refresh_token: str, client_id: str) -> TokenPair:
        now = self.clock.now()
        entry = self._refresh.get(refresh_token)
        if entry is None or entry.grant.revoked or entry.grant.client_id != client_id:
            raise OAuthError("invalid_grant", "unknown or revoked refresh token")
        if entry.expires_at is not None and now >= entry.expires_at:
            raise OAuthError("invalid_grant", "refresh token expired")
        if entry.superseded_at is not None:
            if now >= entry.superseded_at + self.refresh_grace_seconds or entry.successor is None:
                raise OAuthError("invalid_grant", "refresh token was rotated")
            return self._issue_access(entry.grant, self._current(entry.successor))
        if not self.rotate_refresh_tokens:
            entry.expires_at = now + self.refresh_ttl_seconds
            return self._issue_access(entry.grant, refresh_token)
        successor = self._new_refresh(entry.grant)
        entry.successor, entry.superseded_at = successor, now
        return self._issue_access(entry.grant, successor)

    # revoke and validate

    def revoke(self, token: str) -> bool:
        """True if the token was known. Revoking a refresh token revokes every token of its grant."""
        if token in self._refresh:
            self._refresh[token].grant.revoked = True
            return True
        entry = self._access.pop(token, None)
        return entry is not None

    def lookup(self, access_token: str) -> Grant | None:
        """The grant behind a valid, unexpired, unrevoked access token."""
        entry = self._access.get(access_token)
        if entry is None or entry.grant.revoked:
            return None
        if entry.expires_at is not None and self.clock.now() >= entry.expires_at:
            return None
        return entry.grant

    def expired_seconds_ago(self, access_token: str) -> float | None:
        """How long ago a known access token expired (providers word their 401s with it); None otherwise."""
        entry = self._access.get(access_token)
        if entry is None or entry.expires_at is None or self.clock.now() < entry.expires_at:
            return None
        return self.clock.now() - entry.expires_at

    def validate(self, access_token: str) -> str | None:
        """The account id the access token may act on, or None."""
        grant = self.lookup(access_token)
        return grant.account_id if grant else None

    # state

    def dump(self) -> dict[str, Any]:
        grants: dict[str, Grant] = {}
        for entry in (*self._access.values(), *self._refresh.values()):
            grants[entry.grant.grant_id] = entry.grant

        def tokens(table: dict[str, _Token]) -> dict[str, Any]:
            return {
                token: {"grant": entry.grant.grant_id, "expires_at": entry.expires_at,
                        "successor": entry.successor, "superseded_at": entry.superseded_at}
                for token, entry in table.items()
            }  # fmt: skip

        return {
            "grants": {grant_id: dataclasses.asdict(grant) for grant_id, grant in grants.items()},
            "access": tokens(self._access),
            "refresh": tokens(self._refresh),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Replace issued tokens with a `dump()`; registered clients stay (they come from settings)."""
        grants = {grant_id: Grant(**fields) for grant_id, fields in state.get("grants", {}).items()}

        def tokens(table: dict[str, Any]) -> dict[str, _Token]:
            return {
                token: _Token(grants[fields["grant"]], fields["expires_at"], fields["successor"],
                              fields["superseded_at"])
                for token, fields in table.items()
            }  # fmt: skip

        self._codes.clear()
        self._access = tokens(state.get("access", {}))
        self._refresh = tokens(state.get("refresh", {}))

    # internals

    def _new_token(self, kind: str) -> str:
        prefix = f"{self.token_prefix}{kind}-" if kind != "access" else self.token_prefix
        return prefix + secrets.token_urlsafe(24)

    def _new_refresh(self, grant: Grant) -> str:
        token = self._new_token("refresh")
        self._refresh[token] = _Token(grant, self.clock.now() + self.refresh_ttl_seconds)
        return token

    def _current(self, refresh_token: str) -> str:
        """Follow successors to the newest refresh token of a chain."""
        while (successor := self._refresh[refresh_token].successor) is not None:
            refresh_token = successor
        return refresh_token

    def _issue_pair(self, grant: Grant) -> TokenPair:
        return self._issue_access(grant, self._new_refresh(grant))

    def _issue_access(self, grant: Grant, refresh_token: str) -> TokenPair:
        now = self.clock.now()
        access_token = self._new_token("access")
        self._access[access_token] = _Token(grant, now + self.access_ttl_seconds)
        refresh_expires_at = self._refresh[refresh_token].expires_at
        refresh_expires_in = round(refresh_expires_at - now) if refresh_expires_at is not None else None
        return TokenPair(
            access_token,
            refresh_token,
            self.access_ttl_seconds,
            refresh_expires_in,
            grant.account_id,
            grant.scope,
        )
