"""The sandbox stays out of the product: a distribution of its own (sandbox/pyproject.toml, `hsqbo-sandbox`), left
out of hsqbo's package and image, configured by its own options and reading none of hsqbo's settings."""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from hsqbo_sandbox import SandboxApps
from hsqbo_sandbox.hubspot._auth import DEFAULT_SCOPES
from shared.clients import REQUESTED_SCOPES

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "sandbox"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_hsqbos_package_finds_no_sandbox_module() -> None:
    """What `pip install .` (so the image) installs: the packages pyproject.toml's patterns find at the top of the
    repository, none of them the sandbox's."""
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [
        ".".join(init.parent.relative_to(REPO).parts)
        for top in REPO.iterdir()
        if (top / "__init__.py").is_file()
        for init in top.rglob("__init__.py")
    ]
    shipped = [package for package in packages if any(fnmatch.fnmatch(package, pattern) for pattern in include)]
    assert {"services.worker", "shared.store"} <= set(shipped)
    assert [package for package in shipped if "sandbox" in package] == []


def test_the_sandbox_is_a_distribution_of_its_own_with_its_own_command() -> None:
    project = tomllib.loads((SANDBOX / "pyproject.toml").read_text())["project"]
    assert project["name"] == "hsqbo-sandbox"
    assert project["scripts"] == {"hsqbo-sandbox": "hsqbo_sandbox:main"}
    assert "hsqbo-sandbox" not in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_the_images_final_stage_has_only_what_the_product_stage_installed() -> None:
    """The product image is the Dockerfile's last stage: it copies the venv of the `build` stage, which never sees
    the sandbox; the sandbox is installed in a stage of its own (`--target sandbox`)."""
    stages = re.split(r"^FROM ", (REPO / "Dockerfile").read_text(), flags=re.MULTILINE)[1:]
    named = {match[1]: stage for stage in stages if (match := re.match(r"\S+ AS (\S+)", stage))}
    assert re.findall(r"^COPY --from=(\S+)", stages[-1], re.MULTILINE) == ["build"]
    copied = " ".join(re.findall(r"^(?:COPY|RUN) (.+)$", named["build"], re.MULTILINE))
    assert "services" in copied
    assert "sandbox" not in copied
    assert re.search(r"pip install --no-deps \./sandbox", named["sandbox-build"])
    assert named["sandbox-build"].startswith("build AS")


def test_the_sandbox_imports_nothing_of_hsqbos_settings() -> None:
    for path in (SANDBOX / "hsqbo_sandbox").rglob("*.py"):
        assert not {name for name in imports(path) if name.startswith(("shared.config", "shared.process"))}, path
    # Nor through what it imports: a fresh interpreter loading every emulator has no hsqbo settings module.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(SANDBOX)])}
    code = "import sys, hsqbo_sandbox, hsqbo_sandbox.hubspot, hsqbo_sandbox.qbo; print('shared.config' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "False"  # fmt: skip


def test_only_hsqbo_run_imports_the_sandbox() -> None:
    importers = {
        str(path.relative_to(REPO))
        for top in ("services", "shared")
        for path in (REPO / top).rglob("*.py")
        if any(name.split(".")[0] == "hsqbo_sandbox" for name in imports(path))
    }
    assert importers <= {"services/run/__init__.py", "services/run/_stack.py", "services/run/_demo.py"}


def test_the_sandboxs_apps_come_from_its_own_variables_only() -> None:
    environ = {"HSQBO_HUBSPOT_CLIENT_SECRET": "hsqbo's", "HSQBO_SANDBOX_QBO_CLIENT_ID": "its-own"}
    apps = SandboxApps.from_env(environ)
    assert apps.hubspot_client_secret == SandboxApps().hubspot_client_secret
    assert apps.qbo_client_id == "its-own"


def test_an_installed_app_is_granted_the_scopes_hsqbos_hubspot_project_declares() -> None:
    assert sorted(DEFAULT_SCOPES.split()) == sorted(REQUESTED_SCOPES)
