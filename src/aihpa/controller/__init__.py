"""The aihpa controller (the composition layer): it watches, forecasts, decides with `aihpa.scaling`, and scales.

One module per job: `settings` (validated when built), `cache` (the watched Deployments and HPA targets),
`forecasting` and `deciding` (the cycle's batched forecast and its decisions), `actuation` (the scale patch and the
status annotation), `outbox` (the cycle's Events), `models` (challenges, probation, rollback), `publishing`
(replica profiles and the history file), and `core`, which wires them into `Controller` and orders the cycle.
"""

from aihpa.controller.core import Controller, CycleReport
from aihpa.controller.deciding import WorkloadDecision
from aihpa.controller.settings import ControllerSettings

__all__ = ["Controller", "ControllerSettings", "CycleReport", "WorkloadDecision"]
