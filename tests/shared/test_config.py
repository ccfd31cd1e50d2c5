"""Settings: a missing or invalid one stops the process at start with one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.config import Settings, load_settings
from shared.errors import ConfigError


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSQBO_PUBLISH_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match="HSQBO_PUBLISH_TIMEOUT_SECONDS is invalid"):
        load_settings()


def test_required_setting_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="HSQBO_HUBSPOT_CLIENT_SECRET is required"):
        Settings().require("hubspot_client_secret")


def test_receiver_without_secrets_exits_with_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "receiver", "--port", "0"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "hsqbo receiver: HSQBO_HUBSPOT_CLIENT_SECRET is required but not set"


def test_secrets_never_show_in_repr() -> None:
    settings = Settings(hubspot_client_secret="s3cret-value")
    assert "s3cret-value" not in repr(settings)
