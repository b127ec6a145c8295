"""Fewer writes: a scale only when the count changes, a status only when its news changes (or it is old), every
write counted by kind and per cycle."""

from __future__ import annotations

from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig

LABELS = {"aihpa/enabled": "true"}


def _writes(rig: Rig) -> dict[str, float]:
    """The writes about workloads so far, by kind (the replica profiles' ConfigMaps are the cluster's, not theirs)."""
    return {s.labels["kind"]: s.value for m in rig.controller.metrics.api_writes.collect() for s in m.samples
            if s.name.endswith("_total") and s.labels["kind"] != "configmaps"}


def _since(rig: Rig, before: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0)) for k, v in _writes(rig).items() if v != before.get(k, 0)}


async def _deploy(rig: Rig, name: str, *, cores: float, replicas: int) -> None:
    await rig.cluster.create(deployment_manifest(name, replicas=replicas, labels=LABELS, cpu_request="500m",
                                                 cpu_limit="1",
                                                 annotations={"sim.aihpa.io/demand-cores": str(cores)}))
    await rig.controller.wait_until(lambda: f"default/{name}" in rig.controller.workloads)


async def test_a_steady_workload_is_not_rewritten_each_step_and_its_status_is_refreshed_when_old(rig: Rig) -> None:
    status_every_s = rig.controller.settings.status_every_s
    await _deploy(rig, "web", cores=0.8, replicas=2)
    rig.forecaster.value = 0.8
    await rig.cycles(8)  # settled: the count the policy wants is there
    w = rig.controller.workloads["default/web"]
    for _ in range(10):  # from a status just written (its news, or its refresh)
        if w.status_time == rig.cluster.clock.now():
            break
        await rig.cycles(1)
    steps = int(status_every_s // 60) - 1
    before = _writes(rig)
    await rig.cycles(steps)
    # model steps that change nothing a person reads write nothing: no scale, no status, no Event
    assert _since(rig, before) == {}
    assert rig.controller.metrics.last_cycle_writes._value.get() == 0
    await rig.cycles(2)
    # ... until the status is `status_every_s` old: then it is refreshed, once
    assert _since(rig, before) == {"status": 1}


async def test_a_scale_is_one_scale_write_one_event_and_one_status_counted_in_its_cycle(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8, replicas=2)
    rig.forecaster.value = 0.8
    await rig.cycles(8)
    before = _writes(rig)
    current = rig.controller.workloads["default/web"].replicas
    rig.forecaster.value = 7.0  # 7 cores coming, a pod may use 1: more pods
    await rig.cycles(1)
    assert rig.controller.workloads["default/web"].replicas > current
    assert _since(rig, before) == {"scale": 1, "event": 1, "status": 1}
    assert rig.controller.metrics.last_cycle_writes._value.get() == 3
    text = rig.controller.metrics.render().decode()
    assert 'aihpa_api_writes_total{kind="scale"}' in text and "aihpa_api_writes_per_cycle_bucket" in text


async def test_a_cycle_that_writes_nothing_schedules_no_api_call(rig: Rig) -> None:
    for i in range(3):
        await _deploy(rig, f"web-{i}", cores=0.8, replicas=2)
    rig.forecaster.value = 0.8
    await rig.cycles(8)
    carried: list[str] = []
    actuate = rig.controller.actuator.actuate

    async def counted(p, **kwargs):  # type: ignore[no-untyped-def]
        carried.append(p.workload.key)
        return await actuate(p, **kwargs)

    rig.controller.actuator.actuate = counted  # type: ignore[method-assign]
    before = _writes(rig)
    report = await rig.controller.run_cycle()  # a sync inside the step: the safety net holds every count
    assert len(report.decisions) == 3 and not any(d.applied for d in report.decisions)
    assert carried == [] and _since(rig, before) == {}
    rig.forecaster.value = 7.0  # the next step scales them: each is carried out through the API
    await rig.cycles(1)
    assert sorted(set(carried)) == [f"default/web-{i}" for i in range(3)]
