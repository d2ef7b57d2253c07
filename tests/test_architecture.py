"""The layers' forbidden arrows, read from the source: every import of every module under scim_bridge/.

The README's layers table says what each layer does not do; these are the rules it implies about
imports. The SCIM layer speaks to storage only, never to the sync engine or a target; a target
translator speaks HTTP to its vendor and knows neither SCIM nor the store; the store knows no one
above it; an emulator stands in for a vendor's API, so it must not lean on any part of the bridge it
is there to test. Imports inside functions and under `if TYPE_CHECKING:` count as well: a deferred
import is still a dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scim_bridge"

_BRIDGE_LAYERS = ("scim", "store", "sync", "targets", "audit", "web", "auth", "sandbox", "app", "cli", "config")
FORBIDDEN: dict[str, frozenset[str]] = {
    "scim": frozenset({"sync", "targets"}),
    "targets": frozenset({"scim", "store"}),
    "store": frozenset({"sync", "targets"}),
    "emulators": frozenset(_BRIDGE_LAYERS),
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    source_layer: str
    target_layer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source_layer} → {self.target_layer} (imports {self.imported})"


def layer_of(module: str) -> str | None:
    """scim_bridge.scim.routes → "scim"; scim_bridge.config → "config"; outside the package → None."""
    parts = module.split(".")
    if parts[0] != "scim_bridge" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for every import statement anywhere in the tree, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base == "scim_bridge":  # `from .. import sync`: each name is a layer of its own
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def violations_in(source: str, module: str, path: str, is_package: bool = False) -> list[Violation]:
    source_layer = layer_of(module)
    if source_layer not in FORBIDDEN:
        return []
    tree = ast.parse(source, filename=path)
    found = []
    for line, imported in imported_modules(tree, module, is_package):
        target_layer = layer_of(imported)
        if target_layer in FORBIDDEN[source_layer]:
            found.append(Violation(path, line, source_layer, target_layer, imported))
    return found


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_imports_across_a_forbidden_arrow() -> None:
    found: list[Violation] = []
    for path in package_modules():
        found += violations_in(
            path.read_text(encoding="utf-8"),
            module_name(path),
            str(path.relative_to(ROOT)),
            is_package=path.name == "__init__.py",
        )
    assert not found, "forbidden imports between layers:\n" + "\n".join(map(str, found))


def test_every_ruled_layer_has_modules_so_the_rules_are_not_vacuous() -> None:
    layers = {layer_of(module_name(path)) for path in package_modules()}
    assert set(FORBIDDEN) <= layers


def test_the_checker_names_file_line_and_arrow_of_a_relative_import_inside_a_function() -> None:
    source = (
        '"""A SCIM module that reaches into the sync engine, lazily."""\n'
        "from .errors import ScimError\n"
        "\n"
        "\n"
        "def handler():\n"
        "    from ..sync.engine import Engine\n"
    )
    found = violations_in(source, "scim_bridge.scim.fake", "scim_bridge/scim/fake.py")
    assert [str(v) for v in found] == ["scim_bridge/scim/fake.py:6: scim → sync (imports scim_bridge.sync.engine)"]


def test_the_checker_catches_absolute_imports_and_a_layer_named_in_from_dot_dot_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import scim_bridge.targets.http\n"
        "from .. import store, targets\n"
        "if TYPE_CHECKING:\n"
        "    from scim_bridge.scim import routes\n"
    )
    found = violations_in(source, "scim_bridge.targets.fake", "scim_bridge/targets/fake.py")
    assert [(v.line, v.target_layer) for v in found] == [(3, "store"), (5, "scim")]


def test_an_emulator_may_import_its_siblings_but_nothing_of_the_bridge() -> None:
    source = "from .faults import Faults\nfrom ..config import Settings\n"
    found = violations_in(source, "scim_bridge.emulators.fake", "scim_bridge/emulators/fake.py")
    assert [str(v) for v in found] == [
        "scim_bridge/emulators/fake.py:2: emulators → config (imports scim_bridge.config)"
    ]


def test_a_package_init_resolves_one_dot_to_itself() -> None:
    found = violations_in(
        "from .sqlite import SqliteStore\nfrom ..sync import engine\n", "scim_bridge.store", "x", True
    )
    assert [v.imported for v in found] == ["scim_bridge.sync"]
