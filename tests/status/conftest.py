"""The controller test rig (a controller on the simulated cluster with a scripted forecaster) writes the real
statuses that `aihpa status` reads."""

from __future__ import annotations

from aihpa.sim.testing import *  # noqa: F403
from tests.controller.conftest import Rig, ScriptedForecaster, rig

__all__ = ["Rig", "ScriptedForecaster", "rig"]
