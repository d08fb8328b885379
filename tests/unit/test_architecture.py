"""The package map in docs/architecture.md is the tree, the layers hold, and the lint gates bite.

`make lint` runs import-linter (contracts in pyproject.toml) and ruff's McCabe gate; these tests
show both *fail* on a forbidden import and an over-complex function, in a copy of the package,
so a newcomer can see the gates are real and not only green."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "kestrel"
BIN = Path(sys.executable).parent


def _map_rows() -> dict[str, str]:
    """The map's rows: folder or module name -> what it may import."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Map:", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)(?:/|\.py)` \| [^|]+ \| ([^|]+) \|$", section, flags=re.MULTILINE)
    return {name: imports.strip() for name, imports in rows}


def _tree() -> set[str]:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return packages | modules


def test_the_map_names_every_package_and_nothing_else() -> None:
    assert set(_map_rows()) == _tree()


def test_no_import_cycle_between_modules() -> None:
    """Imports inside functions count too (grimp reads every import statement)."""
    graph = grimp.build_graph("kestrel")
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert cycles == []


def _copy_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "functions" / "kestrel", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "functions")}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("domain/errors.py", "import kestrel.adapters.sqlite_items", "Layers"),
        ("store/keys.py", "import kestrel.vision.imagefile", "Storage lays out items and blobs"),
        ("api/errors.py", "import kestrel.adapters.s3_blobs", "Routes parse, call a use case and render"),
        ("flow/mails.py", "import boto3", "Only adapters talk to boto3 and sqlite3"),
    ],
)
def test_a_forbidden_import_fails_the_lint(tmp_path: Path, module: str, forbidden: str, contract: str) -> None:
    tree = _copy_package(tmp_path)
    assert _lint_imports(tree).returncode == 0, "the copy of the package must pass before it is broken"
    target = tree / "functions" / "kestrel" / module
    target.write_text(target.read_text() + f"\n{forbidden}  # noqa\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert contract in result.stdout
    assert "BROKEN" in result.stdout


def test_a_function_over_the_complexity_gate_fails_the_lint(tmp_path: Path) -> None:
    branches = "\n".join(f"    if x == {n}:\n        return {n}" for n in range(15))
    source = tmp_path / "tangled.py"
    source.write_text(f"def tangled(x: int) -> int:\n{branches}\n    return -1\n")
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "--config", str(ROOT / "pyproject.toml"), "--no-cache", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "C901 `tangled` is too complex (16 > 15)" in result.stdout
