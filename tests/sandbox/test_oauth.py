from __future__ import annotations

import pytest

from hsqbo_sandbox import OAuthError, SandboxClock, TokenIssuer


def _issuer(clock: SandboxClock, **options: object) -> TokenIssuer:
    issuer = TokenIssuer(clock, access_ttl_seconds=3600, refresh_grace_seconds=60, **options)  # type: ignore[arg-type]
    issuer.register_client("client", "secret")
    return issuer


def test_client_credentials_must_match_a_registered_client() -> None:
    issuer = _issuer(SandboxClock())
    issuer.check_client("client", "secret")
    for client_id, secret in (("client", "wrong"), ("other", "secret"), (None, None)):
        with pytest.raises(OAuthError) as caught:
            issuer.check_client(client_id, secret)
        assert caught.value.error == "invalid_client"


def test_authorization_code_is_single_use_and_reuse_revokes_what_it_issued() -> None:
    issuer = _issuer(SandboxClock())
    code = issuer.issue_code("realm-1", "client", redirect_uri="https://app.example/cb")
    pair = issuer.exchange_code(code, "client", redirect_uri="https://app.example/cb")
    assert issuer.validate(pair.access_token) == "realm-1"
    with pytest.raises(OAuthError) as caught:
        issuer.exchange_code(code, "client", redirect_uri="https://app.example/cb")
    assert caught.value.error == "invalid_grant"
    assert issuer.validate(pair.access_token) is None


def test_code_for_another_client_or_redirect_uri_is_invalid_grant() -> None:
    issuer = _issuer(SandboxClock())
    code = issuer.issue_code("realm-1", "client", redirect_uri="https://app.example/cb")
    with pytest.raises(OAuthError, match="invalid_grant"):
        issuer.exchange_code(code, "other")
    with pytest.raises(OAuthError, match="redirect_uri"):
        issuer.exchange_code(code, "client", redirect_uri="https://evil.example/cb")


def test_access_token_expires_after_its_ttl_on_the_sandbox_clock() -> None:
    clock = SandboxClock()
    issuer = _issuer(clock)
    pair = issuer.issue("realm-1", "client")
    assert pair.expires_in == 3600
    clock.advance(3599)
    assert issuer.validate(pair.access_token) == "realm-1"
    clock.advance(1)
    assert issuer.validate(pair.access_token) is None


def test_refresh_rotates_and_the_old_token_answers_with_the_same_successor_until_the_grace_ends() -> None:
    clock = SandboxClock()
    issuer = _issuer(clock)
    first = issuer.issue("realm-1", "client")
    assert first.refresh_token is not None
    second = issuer.refresh(first.refresh_token, "client")
    assert second.refresh_token not in (None, first.refresh_token)
    racing = issuer.refresh(first.refresh_token, "client")
    assert racing.refresh_token == second.refresh_token
    clock.advance(61)
    with pytest.raises(OAuthError) as caught:
        issuer.refresh(first.refresh_token, "client")
    assert caught.value.error == "invalid_grant"
    assert second.refresh_token is not None
    assert issuer.validate(issuer.refresh(second.refresh_token, "client").access_token) == "realm-1"


def test_refresh_token_lifetime_rolls_and_expires_when_unused() -> None:
    clock = SandboxClock()
    issuer = _issuer(clock, refresh_ttl_seconds=100 * 86400)
    pair = issuer.issue("realm-1", "client")
    assert pair.refresh_expires_in == 100 * 86400
    assert pair.refresh_token is not None
    clock.advance(100 * 86400)
    with pytest.raises(OAuthError, match="expired"):
        issuer.refresh(pair.refresh_token, "client")


def test_without_rotation_the_same_refresh_token_comes_back() -> None:
    issuer = _issuer(SandboxClock(), rotate_refresh_tokens=False)
    pair = issuer.issue("portal-1", "client")
    assert pair.refresh_token is not None
    assert issuer.refresh(pair.refresh_token, "client").refresh_token == pair.refresh_token


def test_revoking_a_refresh_token_ends_every_token_of_the_grant() -> None:
    issuer = _issuer(SandboxClock())
    pair = issuer.issue("realm-1", "client")
    assert pair.refresh_token is not None
    assert issuer.revoke(pair.refresh_token)
    assert issuer.validate(pair.access_token) is None
    with pytest.raises(OAuthError, match="invalid_grant"):
        issuer.refresh(pair.refresh_token, "client")
    assert not issuer.revoke("unknown")


def test_static_tokens_never_expire() -> None:
    clock = SandboxClock()
    issuer = _issuer(clock)
    issuer.register_static("pat-na1-abc", "portal-9")
    clock.advance(10 * 365 * 86400)
    assert issuer.validate("pat-na1-abc") == "portal-9"


def test_dump_and_load_keep_issued_tokens_valid() -> None:
    clock = SandboxClock()
    issuer = _issuer(clock)
    pair = issuer.issue("realm-1", "client")
    restored = _issuer(clock)
    restored.load(issuer.dump())
    assert restored.validate(pair.access_token) == "realm-1"
    assert pair.refresh_token is not None
    assert restored.refresh(pair.refresh_token, "client").account_id == "realm-1"
