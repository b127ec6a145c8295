"""What the command does before any handler runs: `--version` without loading a command module, a command that
loads only its own module, and logging set up once, with JAX's backend probe kept out of it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aihpa import __version__
from aihpa.cli import configure_logging

HEAVY = ("jax", "numpy", "aiohttp", "kubernetes_asyncio", "flax", "rich")


def _imported(stderr: str) -> set[str]:
    """The top-level packages a `-X importtime` run imported."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.parametrize("entry", ["module", "script"])
def test_version_prints_without_importing_any_command_module(entry: str) -> None:
    script = Path(sys.executable).parent / "aihpa"
    if entry == "script" and not script.is_file():
        pytest.skip("the aihpa console script is not installed beside this interpreter")
    argv = [sys.executable, "-m", "aihpa"] if entry == "module" else [str(script)]
    done = _run(*argv, "--version")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"aihpa {__version__}"
    imported = _imported(done.stderr)
    assert "aihpa" in imported  # the profile did record the run's imports
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


_ONE_COMMAND = """
import json, sys
from aihpa.cli import main
code = main(["sim", "serve", "--duration", "-1"])  # refused before the handler starts anything
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_a_command_loads_only_the_module_that_defines_it() -> None:
    import json

    done = subprocess.run([sys.executable, "-c", _ONE_COMMAND], capture_output=True, text=True, timeout=120,
                          check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 2 and "--duration must be positive" in done.stderr
    modules = set(result["modules"])
    assert "aihpa.sim.cli" in modules
    assert not {"aihpa.forecast.cli", "aihpa.controller_cli", "aihpa.backtest.cli", "aihpa.demo", "jax"} & modules


_PROBE = """
import logging, sys
from aihpa.cli import configure_logging
configure_logging(level=logging.INFO, verbosity=int(sys.argv[1]))
logging.getLogger("aihpa.test").info("first line of the command")
import jax
jax.devices()
"""


def _probe_log(verbosity: int) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "JAX_LOGGING_LEVEL")}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(verbosity)], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_jax_backend_probe_stays_out_of_the_log_unless_asked_for() -> None:
    quiet = _probe_log(0)
    assert "first line of the command" in quiet.splitlines()[0]
    assert "jax" not in quiet and "backend" not in quiet, quiet
    loud = _probe_log(3)
    if "jax._src.xla_bridge" not in loud:
        pytest.skip("this JAX does not log its backend probe at all")
    # the same run at -vvv shows what the default keeps out
    assert any("xla_bridge" in line and "backend" in line for line in loud.splitlines()), loud


def test_logging_keeps_the_handlers_a_host_application_set_up() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    configure_logging(level=logging.DEBUG, json_lines=True)
    assert root.handlers == before and root.level == level
    assert logging.getLogger("jax").level == logging.WARNING
