"""The admission logic, annotations and profiles stay pure: standard library and pure aihpa modules only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.webhook.conftest import ROOT

SRC = ROOT / "src" / "aihpa"
PURE = [
    SRC / "annotations.py",
    SRC / "jsoncopy.py",
    SRC / "profiles.py",
    SRC / "webhook" / "admission.py",
    SRC / "webhook" / "jsonpatch.py",
    SRC / "webhook" / "settings.py",
    SRC / "webhook" / "types.py",
]
# hashlib: profiles.py hashes workload keys into shards (a pure function of its input).
ALLOWED_STDLIB = {
    "__future__", "base64", "collections", "copy", "dataclasses", "hashlib", "json", "math", "re", "typing"
}
ALLOWED_AIHPA = {
    "aihpa.annotations",
    "aihpa.defaults",
    "aihpa.jsoncopy",
    "aihpa.profiles",
    "aihpa.webhook",
    "aihpa.webhook.jsonpatch",
    "aihpa.webhook.settings",
    "aihpa.webhook.types",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(Path(p).relative_to(SRC)))
def test_pure_modules_import_no_io_no_clock_and_no_transport(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "aihpa":
            assert name in ALLOWED_AIHPA, f"{path.name} imports {name}"
        else:
            assert top in ALLOWED_STDLIB, f"{path.name} imports {name}"


def test_loading_the_admission_logic_loads_neither_aiohttp_nor_cryptography() -> None:
    code = (
        "import sys, aihpa.webhook.admission, aihpa.annotations, aihpa.profiles; "
        "bad = {'aiohttp', 'cryptography', 'prometheus_client', 'jax'} & set(sys.modules); "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
