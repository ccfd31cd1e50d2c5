from __future__ import annotations

import pytest

from hsqbo_sandbox import main


def test_sandbox_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hsqbo-sandbox")
    for option in ("--qbo-port", "--hubspot-port", "--qbo-webhook-format", "--state-file", "--seed", "--retry-scale"):
        assert option in out
