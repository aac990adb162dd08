"""The package's shape is enforced, not described: layers point down, and nothing imports in a circle.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and the layer order in
docs/architecture.md. An import from a lower layer into a higher one (a policy reading the
run engine's state, a result reader importing the evaluator) fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "lint-imports is missing: install the dev extra (make test does)"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout, result.stdout[-2000:]


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("evalharness", "envs")
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == [], f"import cycles: {cycles[:10]}"


def test_every_layer_named_in_the_contract_exists() -> None:
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    names = [name.strip() for layer in layers for name in layer.replace(":", "|").split("|")]
    for name in names:
        parts = name.split(".")
        path = ROOT.joinpath(*parts)
        assert path.is_dir() or path.with_suffix(".py").is_file(), f"layer {name} names no module"


def test_every_import_of_the_project_names_a_module_that_exists() -> None:
    """Local imports too (``from evalharness.x import y`` inside a function): a moved module
    leaves no import that only fails when that code path runs."""
    import ast
    import importlib.util

    missing = []
    for path in sorted([*ROOT.glob("evalharness/**/*.py"), *ROOT.glob("envs/**/*.py"), *ROOT.glob("tests/**/*.py"),
                        *ROOT.glob("scripts/*.py"), *ROOT.glob("examples/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] in ("evalharness", "envs") and importlib.util.find_spec(name) is None:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert missing == [], "imports of modules that do not exist:\n" + "\n".join(missing)
