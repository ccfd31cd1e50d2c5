"""The direction of imports: each module imports only from layers below its own (and from its own package), so
`shared.domain` at the bottom imports nothing of hsqbo and the store, the API clients and the broker adapter never
import one another. Read from the source with `ast`, imports under TYPE_CHECKING included: a module placed in no
layer fails, so a new one is placed on purpose."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    packages: tuple[str, ...]
    peers: bool = False  # its packages may import one another


FOUNDATIONS = (
    "shared.errors", "shared.money", "shared.version", "shared.logging", "shared.health", "shared.metrics",
    "shared.tracing", "shared.config", "shared.syncconfig", "shared.signatures", "shared.asgi", "shared.company",
    "shared.envelope", "shared.budget",
)  # fmt: skip
WIRING = (
    "shared.connections", "shared.credentials", "shared.versions", "shared.resync", "shared.deadletters",
    "shared.process", "shared.heartbeat",
)  # fmt: skip
LAYERS = (  # bottom first
    Layer("domain", ("shared.domain", "shared.quotas")),
    Layer("foundations", FOUNDATIONS, peers=True),
    Layer("adapters", ("shared.clients", "shared.store", "shared.bus")),  # each to one outside system
    Layer("wiring", WIRING, peers=True),
    Layer("services", ("services",), peers=True),
)


def placed(module: str) -> tuple[int, str] | None:
    """The layer's index and the package of `module`, None when no layer holds it."""
    for index, layer in enumerate(LAYERS):
        for package in layer.packages:
            if module == package or module.startswith(package + "."):
                return index, package
    return None


def modules() -> Iterator[tuple[str, Path]]:
    for top in ("shared", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every hsqbo module `path` imports; `from shared import money` imports `shared.money`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [node.module] if "." in node.module else [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from ((node.lineno, name) for name in names if name.split(".")[0] in ("shared", "services"))


def test_every_module_is_in_a_layer() -> None:
    assert [module for module, _ in modules() if module != "shared" and placed(module) is None] == []


def test_imports_point_down_the_layers_only() -> None:
    wrong = []
    for module, path in modules():
        here = placed(module)
        if here is None:
            continue
        for line, target in imported(path):
            there = placed(target)
            if there is None:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}, in no layer")
            elif there[1] != here[1] and not (there[0] < here[0] or (there[0] == here[0] and LAYERS[here[0]].peers)):
                wrong.append(
                    f"{path.relative_to(ROOT)}:{line} ({LAYERS[here[0]].name}) imports {target} "
                    f"({LAYERS[there[0]].name})"
                )
    assert wrong == []


def test_the_domain_module_imports_nothing_of_hsqbo() -> None:
    assert list(imported(ROOT / "shared" / "domain.py")) == []
    assert list(imported(ROOT / "shared" / "quotas.py")) == []
