"""The house rules, checked on the source: layers import downwards only, no cycles, short modules.

Layers, lowest first: domain; the store; the read models (projections); the
service layer; the entry points (OCPP endpoint, REST API); app.py. A layer
imports only from layers below it; projections and the upper layers use the
store through its public face (``adapters.store``), not its modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "adapters", "projections")
MAX_LINES = 400

# What each part may import of ours (by module-name prefix). The store's
# public face is "adapters.store" itself; "adapters.store." reaches inside it.
ALLOWED = {
    "domain": ("domain",),
    "adapters.store": ("domain", "adapters.store"),
    "projections": ("domain", "projections", "=adapters.store"),
    "adapters.security": ("domain", "adapters.security"),
    "adapters.service": ("domain", "projections", "adapters.service", "adapters.security", "=adapters.store"),
    "adapters.ocpp": ("domain", "adapters.ocpp", "adapters.service", "=adapters.store"),
    "adapters.api": ("domain", "projections", "adapters.api", "adapters.ocpp", "adapters.service", "adapters.security",
                     "adapters.store"),
}
# Outside libraries the pure domain may not use.
IMPURE = ("asyncio", "aiohttp", "psycopg", "sqlite3", "socket", "threading")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    modules["app"] = ROOT / "app.py"
    return modules


MODULES = our_modules()


def imports_of(name: str) -> set[str]:
    """Every module ``name`` imports, at any depth of its code (TYPE_CHECKING blocks too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            for alias in node.names:
                # "from adapters.store import X": X may be a module of the package or a name in it.
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


def ours(name: str) -> bool:
    return name in MODULES or any(name.startswith(f"{package}.") for package in PACKAGES)


def part_of(name: str) -> str | None:
    matches = [part for part in ALLOWED if name == part or name.startswith(f"{part}.")]
    return max(matches, key=len) if matches else None


def permitted(imported: str, rules: tuple[str, ...]) -> bool:
    for rule in rules:
        if rule.startswith("="):
            if imported == rule[1:]:
                return True
        elif imported == rule or imported.startswith(f"{rule}."):
            return True
    return False


def test_every_module_is_in_a_layer():
    assert [name for name in MODULES if name not in ("app", "adapters") and part_of(name) is None] == []


@pytest.mark.parametrize("name", sorted(name for name in MODULES if part_of(name)))
def test_a_module_imports_only_from_its_own_layer_and_below(name):
    rules = ALLOWED[part_of(name) or ""]
    wrong = sorted(imported for imported in imports_of(name) if ours(imported) and not permitted(imported, rules))
    assert wrong == [], f"{name} may import only {rules}"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.startswith("domain")))
def test_the_domain_stays_pure(name):
    impure = sorted(imported for imported in imports_of(name) if imported.split(".")[0] in IMPURE)
    assert impure == []


def test_no_import_cycles():
    graph = {name: {imported for imported in imports_of(name) if imported in MODULES} for name in MODULES}
    cycles = []
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(name: str) -> None:
        state[name] = "open"
        trail.append(name)
        for following in sorted(graph[name]):
            if state.get(following) == "open":
                cycles.append(trail[trail.index(following):] + [following])
            elif following not in state:
                visit(following)
        trail.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    # A package's __init__ that gathers its own modules is the package's face, not a cycle.
    real = [cycle for cycle in cycles if not _through_own_package_face(cycle)]
    assert real == []


def _through_own_package_face(cycle: list[str]) -> bool:
    faces = [name for name in cycle if MODULES[name].name == "__init__.py"]
    return any(all(name == face or name.startswith(f"{face}.") for name in cycle) for face in faces)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= MAX_LINES
