"""Settings: a missing or invalid one stops the process at start with one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_commands_read_the_env_file_after_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "stack.env"
    env_file.write_text("HSQBO_STORE_URL=sqlite:////srv/hsqbo.db\nHSQBO_LOG_LEVEL=DEBUG\n# a comment\n")
    monkeypatch.setenv("HSQBO_ENV_FILE", str(env_file))
    monkeypatch.setenv("HSQBO_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert settings.store_url == "sqlite:////srv/hsqbo.db"
    assert settings.log_level == "WARNING"  # the environment wins over the file


def test_the_default_env_file_is_read_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HSQBO_ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().store_url == Settings().store_url  # no ./hsqbo.env: nothing read
    (tmp_path / "hsqbo.env").write_text("HSQBO_STORE_URL=sqlite:///here.db\n")
    assert load_settings().store_url == "sqlite:///here.db"


def test_a_named_env_file_that_is_missing_stops_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSQBO_ENV_FILE", "/nonexistent/hsqbo.env")
    with pytest.raises(ConfigError, match=r"HSQBO_ENV_FILE: no such file /nonexistent/hsqbo\.env"):
        load_settings()
