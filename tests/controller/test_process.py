"""A controller process sets its garbage collector's thresholds once, at start (`aihpa controller`), and a library
import changes nothing."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import aihpa.controller_cli as controller_cli
from aihpa.cli import main
from aihpa.controller.process import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_tuning_sets_the_controller_s_thresholds_and_returns_the_old_ones() -> None:
    gc.set_threshold(700, 10, 10)
    assert tune_garbage_collector() == (700, 10, 10)
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # a young generation large enough that full collections stay rare


@pytest.mark.usefixtures("thresholds")
def test_the_controller_command_runs_its_loop_with_the_controller_s_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[int, ...]] = []

    def run(coro: Any) -> None:  # the command's event loop, not started: what matters is the process it would run in
        seen.append(gc.get_threshold())
        coro.close()

    monkeypatch.setattr(controller_cli.asyncio, "run", run)
    assert main(["controller", "--kubeconfig", "/nonexistent"]) == 0
    assert seen == [GC_THRESHOLDS]


def test_importing_aihpa_leaves_the_collector_alone() -> None:
    code = "import gc; before = gc.get_threshold(); import aihpa, aihpa.controller; print(before == gc.get_threshold())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "True"
