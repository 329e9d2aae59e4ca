"""The package arrows of docs/ARCHITECTURE.md: ``chatcore`` imports none of ours; the wings
(``ai``, ``archive``, ``whatsapp_bridge``) import ``chatcore`` and never ``server``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"chatcore", "server", "ai", "archive", "whatsapp_bridge"}
ALLOWED = {
    "chatcore": set(),
    "ai": {"chatcore"},
    "archive": {"chatcore"},
    "whatsapp_bridge": {"chatcore"},
}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_architecture_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    bad = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) - ALLOWED[package] - {package})
        for f in files
    }
    assert {f: p for f, p in bad.items() if p} == {}
