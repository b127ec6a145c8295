"""A controller process sets its garbage collector's thresholds once, at start (`aihpa controller`), and collects its
young generations at the end of every cycle; a library import changes nothing."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import aihpa.controller_cli as controller_cli
from aihpa.cli import main
from aihpa.controller import process
from aihpa.controller.process import GC_THRESHOLDS, after_cycle, tune_garbage_collector
from tests.controller.conftest import Rig


@pytest.fixture
def thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = gc.get_threshold()
    monkeypatch.setattr(process, "_tuned", False)  # and put back: the rest of the suite runs untuned
    yield
    gc.set_threshold(*saved)


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The generations `gc.collect` is asked for, recorded instead of collected."""
    asked: list[int] = []
    monkeypatch.setattr(process.gc, "collect", lambda generation=2: asked.append(generation) or 0)
    return asked


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


@pytest.mark.usefixtures("thresholds")
def test_the_end_of_a_cycle_collects_the_young_generations_only_in_a_tuned_process(collections: list[int]) -> None:
    after_cycle()
    assert collections == []  # a library user's process: its own collector, untouched
    tune_garbage_collector()
    after_cycle()
    assert collections == [1]  # generations 0 and 1, never a full collection


@pytest.mark.usefixtures("thresholds")
async def test_every_controller_cycle_ends_with_the_collection(rig: Rig, collections: list[int]) -> None:
    tune_garbage_collector()
    await rig.cycles(3, every=15.0)
    assert collections == [1, 1, 1]
