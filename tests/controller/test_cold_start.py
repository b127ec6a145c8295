"""A new workload on the controller: forecasts from its eighth sample, and until its scores are its own the count stays
within the warm-up margin of the fallback HPA's, whatever the forecast says; the reason says so."""

from __future__ import annotations

import json

from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig


async def test_a_new_workload_is_held_near_the_fallback_until_calibrated(rig: Rig) -> None:
    manifest = deployment_manifest("fresh", replicas=2, labels={"aihpa/enabled": "true"}, cpu_request="500m",
                                   cpu_limit="1", annotations={"sim.aihpa.io/demand-cores": "0.8"})
    await rig.cluster.create(manifest)
    await rig.controller.wait_until(lambda: "default/fresh" in rig.controller.workloads)
    rig.forecaster.value = 7.0  # a forecast of 7 cores for a workload using 0.8 today
    await rig.cycles(10)
    dep = rig.cluster.get("apps/v1", "Deployment", "fresh", "default")
    assert dep is not None
    # the fallback HPA at its 70% target of 0.5-core requests wants ceil(0.8 / 0.35) = 3 pods; the bound allows
    # 10% more, at least one pod: 4 (without the bound the forecast would have asked for 7)
    assert dep["spec"]["replicas"] == 4
    status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    assert "capped at 4 while calibrating" in status["reason"]
