"""The `aihpa/tolerance` annotation reaches the HPA formula the controller runs (reactive mode and the safety net)."""

from __future__ import annotations

import pytest

from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig

# 0.65 cores over 2 pods of 500m is 65% of the request: 65/50 = 1.3 against a 50% target
ANNOTATIONS = {
    "sim.aihpa.io/demand-cores": "0.65",
    "aihpa/mode": "reactive",
    "aihpa/target-utilization": "0.5",
}


@pytest.mark.parametrize(
    ("tolerance", "expected"),
    [(None, 3), ("0.3", 2), ("0.25", 3), ("wide", 3)],
    ids=["default_0.1_scales_up", "a_wider_band_holds", "a_narrower_band_scales", "a_bad_value_takes_the_default"],
)
async def test_the_tolerance_annotation_sets_the_hpa_band(rig: Rig, tolerance: str | None, expected: int) -> None:
    """replica_calculator.go Tolerances.isWithin, with one value for both directions taken from the annotation."""
    annotations = dict(ANNOTATIONS) if tolerance is None else {**ANNOTATIONS, "aihpa/tolerance": tolerance}
    await rig.cluster.create(deployment_manifest("web", replicas=2, labels={"aihpa/enabled": "true"},
                                                 cpu_request="500m", cpu_limit="1", annotations=annotations))
    await rig.controller.wait_until(lambda: "default/web" in rig.controller.workloads)
    await rig.cycles(4)
    dep = rig.cluster.get("apps/v1", "Deployment", "web", "default")
    assert dep is not None and dep["spec"]["replicas"] == expected
    warned = [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") == "InvalidAnnotation"]
    assert bool(warned) == (tolerance == "wide")
