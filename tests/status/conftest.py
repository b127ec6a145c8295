"""The controller test rig (a controller on the simulated cluster with a scripted forecaster) writes the real
statuses that `aihpa status` reads. Every test here shows a scripted forecast acted on at once, so the rig runs
without the warm-up bound (which keeps a workload without scores of its own near the fallback HPA)."""

from __future__ import annotations

import pytest

from aihpa.sim.testing import *  # noqa: F403
from tests.controller.conftest import Rig, ScriptedForecaster, no_warmup_bound, rig

__all__ = ["Rig", "ScriptedForecaster", "no_warmup_bound", "rig"]


@pytest.fixture(autouse=True)
def _scripted_forecasts_act_at_once(no_warmup_bound: None) -> None:
    """The warm-up bound off for every status test."""
