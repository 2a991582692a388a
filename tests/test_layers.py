"""The rooms' import rules: app.py/ui -> agents -> protocol <- inference, read from every module's syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Command-line entry points in agents/ compose an engine at run time (inside main(), never at import).
LAZY_ENGINE_ENTRY_POINTS = {"agents/run.py", "agents/corpus/evaluate.py"}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level package, at module level?) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], not nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], not nested))
            visit(child, inner)

    visit(tree, False)
    return found


def modules(*rooms: str) -> list[Path]:
    paths: list[Path] = []
    for room in rooms:
        target = ROOT / room
        paths.extend([target] if target.suffix == ".py" else sorted(target.rglob("*.py")))
    return paths


UI_LIBS = {"gradio", "spaces", "fastapi", "uvicorn"}
AGENT_LIBS = {"langgraph", "langchain", "langchain_core"}
MODEL_LIBS = {"torch", "transformers", "safetensors", "accelerate"}
RULES = [  # (rooms, packages they must never import, why)
    (("inference",), UI_LIBS | AGENT_LIBS | {"agents", "ui", "app"}, "inference/ knows nothing of agents or pages"),
    (("protocol.py",), UI_LIBS | AGENT_LIBS | MODEL_LIBS | {"agents", "ui", "app", "inference"},
     "protocol.py is the plain-data contract both sides import"),
    (("agents",), UI_LIBS | MODEL_LIBS | {"ui", "app", "inference"}, "agents/ never touches torch or gradio"),
    (("ui", "app.py"), MODEL_LIBS, "the page reaches models only through inference's API"),
]


@pytest.mark.parametrize("rooms,forbidden,why", RULES, ids=[", ".join(r[0]) for r in RULES])
def test_rooms_import_in_one_direction(rooms, forbidden, why):
    broken = []
    for path in modules(*rooms):
        rel = path.relative_to(ROOT).as_posix()
        for package, module_level in imports(path):
            allowed = package == "inference" and not module_level and rel in LAZY_ENGINE_ENTRY_POINTS
            if package in forbidden and not allowed:
                broken.append(f"{rel} imports {package}")
    assert not broken, f"{why}: " + "; ".join(broken)


@pytest.mark.parametrize("source,expected", [
    ("import torch", [("torch", True)]),
    ("from gradio.themes import Soft", [("gradio", True)]),
    ("def main():\n    import inference", [("inference", False)]),
    ("from . import tools", []),
    ("class A:\n    def f(self):\n        from torch import nn", [("torch", False)]),
])
def test_import_reader(tmp_path, source, expected):
    module = tmp_path / "m.py"
    module.write_text(source)
    assert imports(module) == expected
