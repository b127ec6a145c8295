"""The README's library example (examples/library_example.py) runs verbatim and prints the controller's decisions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import aihpa

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "library_example.py"


@pytest.mark.slow
def test_the_library_example_runs_and_prints_forecast_decisions() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"minute {m}" for m in range(5, 46, 5)], done.stdout
    assert "default/web" in lines[0]
    # past the model's 8 minutes of history the decisions come from the forecast (bounded near the fallback's count
    # while calibrating), then from the calibrated candidates; never the fallback again, and the ramp is followed
    assert "(fallback:" in lines[0] and "forecast peak" in lines[1], done.stdout
    assert not any("(fallback:" in line for line in lines[1:]), done.stdout
    assert int(lines[-1].split("-> ")[1].split()[0]) > int(lines[0].split("-> ")[1].split()[0])
    assert "not published" not in done.stderr


def test_import_aihpa_is_light_and_resolves_every_public_name() -> None:
    code = ("import sys, aihpa; heavy = [m for m in ('jax', 'aiohttp', 'kubernetes_asyncio', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
    for name in aihpa.__all__:
        assert getattr(aihpa, name) is not None, name
    assert aihpa.Controller.__aenter__ is not None and aihpa.Controller.__doc__
    with pytest.raises(AttributeError):
        _ = aihpa.no_such_thing
