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
    scale = rig.controller.actuator.scale

    async def counted(p, **kwargs):  # type: ignore[no-untyped-def]
        carried.append(p.workload.key)
        return await scale(p, **kwargs)

    rig.controller.actuator.scale = counted  # type: ignore[method-assign]
    before = _writes(rig)
    report = await rig.controller.run_cycle()  # a sync inside the step: the safety net holds every count
    assert len(report.decisions) == 3 and not any(d.applied for d in report.decisions)
    assert carried == [] and _since(rig, before) == {}
    rig.forecaster.value = 7.0  # the next step scales them: each is carried out through the API
    await rig.cycles(1)
    assert sorted(set(carried)) == [f"default/web-{i}" for i in range(3)]


async def test_a_cycle_writes_every_scale_before_any_status_or_event_and_scale_ups_first(
    rig: Rig, no_warmup_bound: None
) -> None:
    """Reports never queue ahead of pods: the cycle's scale writes go out first (the largest scale-up first, the
    scale-downs last), then the status annotations, then the Events."""
    names = ("shrink", "grow-little", "grow-much")
    for name in names:
        await rig.cluster.create(deployment_manifest(
            name, replicas=1, labels=LABELS, cpu_request="500m", cpu_limit="1",
            annotations={"sim.aihpa.io/demand-cores": "0.5", "aihpa/scale-down-stabilization": "0"}))
    await rig.controller.wait_until(lambda: all(f"default/{n}" in rig.controller.workloads for n in names))
    rig.forecaster.value = 0.5
    await rig.cycles(8)
    for name, replicas in zip(names, (12, 3, 1), strict=True):  # a user sets the counts apart
        await rig.cluster.scale(name, replicas)
    await rig.controller.wait_until(lambda: rig.controller.workloads["default/shrink"].replicas == 12)
    rig.forecaster.value = 5.0  # about 8 pods of 1 core at the 70% target: one shrinks, two grow
    writes: list[tuple[str, str]] = []
    request = rig.kube.request

    async def recorded(method, path, **kwargs):  # type: ignore[no-untyped-def]
        if method in ("POST", "PUT", "PATCH"):
            name = path.rstrip("/").split("/")[-2 if path.endswith("/scale") else -1]
            kind = "scale" if path.endswith("/scale") else "event" if "/events" in path else "status"
            writes.append((kind, name))
        return await request(method, path, **kwargs)

    rig.kube.request = recorded  # type: ignore[method-assign]
    await rig.cycles(1)
    kinds = [kind for kind, _ in writes]
    scales = [name for kind, name in writes if kind == "scale"]
    assert scales == ["grow-much", "grow-little", "shrink"], writes
    assert kinds.count("status") == 3 and kinds.count("event") == 3, writes
    assert kinds == sorted(kinds, key=["scale", "status", "event"].index), writes
