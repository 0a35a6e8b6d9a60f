"""The import graph follows the data flow: the import-linter contracts in pyproject.toml hold
for the code as it is, and each one fails on a deliberate wrong-way import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import "
                "lint_imports_command; sys.exit(lint_imports_command())", "--no-cache"]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINT_IMPORTS, str(root / "pyproject.toml")], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_import_contract() -> None:
    out = _lint(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for package in ("blippsync", "connectors"):
        shutil.copytree(REPO / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


WRONG_WAY = [
    ("blippsync/sync.py", "from blippsync.journeys import routing", "connector -> records"),
    ("blippsync/customers.py", "from blippsync.journeys.retention import run_maintenance",
     "connector -> records"),
    ("blippsync/http/webhooks.py", "from blippsync.daemon import leases", "connector -> records"),
    ("blippsync/journeys/routing.py", "from blippsync.runner import run_once",
     "connector -> records"),
    ("blippsync/cli/sync.py", "from connectors.csv import reader",
     "The core never imports a connector"),
    ("connectors/csv/reader.py", "from blippsync.database import Database",
     "Connectors see the connector contract"),
    ("blippsync/http/state.py", "from blippsync.http import app", "No import cycles"),
]


@pytest.mark.parametrize(("module", "line", "contract"), WRONG_WAY,
                         ids=[w[0].rsplit("/", 1)[-1] + "->" + w[1].split()[1] for w in WRONG_WAY])
def test_a_wrong_way_import_breaks_a_contract(copy: Path, module: str, line: str,
                                              contract: str) -> None:
    path = copy / module
    original = path.read_text()
    path.write_text(original + f"\n\ndef _wrong_way() -> None:\n    {line}  # noqa\n")
    try:
        out = _lint(copy)
    finally:
        path.write_text(original)
    assert out.returncode == 1, out.stdout + out.stderr
    broken = out.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, out.stdout
