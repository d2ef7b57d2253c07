"""sync/, audit/ and web/ loop over the target registry and never name a target (issue 9 item 3):
a module there that spells "cloudinary" or "iconik" in code (a string, an f-string, an attribute,
an identifier) or imports a target's own module is where a third target would need an edit.

Docstrings and comments are free to name a target: they explain, they do not decide. The
allow-list below is what still names one today, module by module, each with why; a module that
stops naming a target must leave the list (the test says so), so it only shrinks.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from scim_bridge.targets.registry import TARGETS

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("sync", "audit", "web")
NAMES = re.compile(r"\b(" + "|".join(sorted(TARGETS)) + r")", re.IGNORECASE)

#: module → why it still names a target. Empty is the goal (README, "Adding a target").
ALLOWED: dict[str, str] = {}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def namings(source: str) -> list[tuple[int, str]]:
    """(line, what) for every place the code of a module names a registered target."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        words: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words = [node.value]
        elif isinstance(node, ast.Attribute):
            words = [node.attr]
        elif isinstance(node, ast.Name):
            words = [node.id]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            words = [node.name]
        elif isinstance(node, ast.arg):
            words = [node.arg]
        elif isinstance(node, ast.keyword) and node.arg:
            words = [node.arg]
        elif isinstance(node, ast.ImportFrom):
            words = [node.module or "", *(a.name for a in node.names)]
        elif isinstance(node, ast.Import):
            words = [a.name for a in node.names]
        for word in words:
            if NAMES.search(word.replace("_", " ").replace(".", " ")):
                found.append((getattr(node, "lineno", 0), word if len(word) < 60 else word[:57] + "..."))
    return found


def layer_modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / "scim_bridge" / layer).rglob("*.py"))


def report() -> dict[str, list[tuple[int, str]]]:
    found = {}
    for path in layer_modules():
        named = namings(path.read_text())
        if named:
            found[str(path.relative_to(ROOT / "scim_bridge"))] = named
    return found


def test_no_module_of_sync_audit_or_web_names_a_target_outside_the_allow_list() -> None:
    offenders = {module: named for module, named in report().items() if module not in ALLOWED}
    assert not offenders, "\n".join(f"{m}:{line}: {what}" for m, named in offenders.items() for line, what in named)


def test_the_allow_list_holds_only_modules_that_still_name_a_target() -> None:
    stale = set(ALLOWED) - set(report())
    assert not stale, f"no longer names a target, take it off ALLOWED: {sorted(stale)}"


def test_the_check_sees_strings_attributes_imports_and_identifiers_but_not_docstrings() -> None:
    source = '''"""Talks about Cloudinary and iconik."""
from ..targets.iconik import IconikTarget
def f(policy):
    """iconik here too."""
    # cloudinary in a comment
    x = policy.access.cloudinary
    return f"{x} on iconik", normalize_cloudinary
'''
    lines = sorted({line for line, _ in namings(source)})
    assert lines == [2, 6, 7], namings(source)
