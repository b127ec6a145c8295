"""Scale writes with conflict retry, aggregated Events, and Lease leader election on the simulated cluster."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.k8s import ConflictError, EventRecorder, KubeClient, LeaderElector, ObjectRef, update_scale
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest


async def test_scale_is_written_with_the_version_it_was_decided_on(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    seen: list[int] = []

    def decide(scale: dict[str, Any]) -> int:
        seen.append(scale["spec"]["replicas"])
        return 5

    # someone else's write lands between our read and our write: the first patch conflicts
    fault = sim_cluster.faults.add(Fault(verb="patch", resource="deployments/scale", status=409, times=1))
    result = await update_scale(kube, namespace="default", name="web", decide=decide)
    assert fault.fired == 1
    assert result.changed and result.before == 2 and result.after == 5 and result.attempts == 2
    assert seen == [2, 2]  # decided again on a fresh read
    dep = sim_cluster.get("apps/v1", "Deployment", "web", "default")
    assert dep is not None and dep["spec"]["replicas"] == 5


async def test_no_write_when_the_decision_is_unchanged_or_none(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=3))
    fault = sim_cluster.faults.add(Fault(verb="patch", resource="deployments/scale", status=500))
    assert not (await update_scale(kube, namespace="default", name="web", decide=lambda s: 3)).changed
    assert not (await update_scale(kube, namespace="default", name="web", decide=lambda s: None)).changed
    assert fault.fired == 0


async def test_a_count_changed_by_someone_else_is_decided_again(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    seen: list[int] = []

    def decide(scale: dict[str, Any]) -> int:
        seen.append(scale["spec"]["replicas"])
        return scale["spec"]["replicas"] + 3

    real_read = kube.get

    async def racing_get(path: str, **params: Any) -> Any:
        scale = await real_read(path, **params)
        if len(seen) == 0:  # kubectl scale lands right after our first read
            await sim_cluster.scale("web", 7)
        return scale

    kube.get = racing_get  # type: ignore[method-assign]
    result = await update_scale(kube, namespace="default", name="web", decide=decide)
    assert seen == [2, 7]  # the test op failed on the stale count; decided again on the fresh one
    assert result.after == 10 and result.attempts == 2


async def test_a_status_update_between_read_and_write_is_no_conflict(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    real_read = kube.get

    async def racing_get(path: str, **params: Any) -> Any:
        scale = await real_read(path, **params)
        await sim_cluster.advance(10)  # pods become ready: the deployment's status (and resourceVersion) changes
        return scale

    kube.get = racing_get  # type: ignore[method-assign]
    result = await update_scale(kube, namespace="default", name="web", decide=lambda s: 4)
    assert result.changed and result.attempts == 1


async def test_persistent_conflicts_surface_after_the_attempts(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=1))
    sim_cluster.faults.add(Fault(verb="patch", resource="deployments/scale", status=409))
    with pytest.raises(ConflictError):
        await update_scale(kube, namespace="default", name="web", decide=lambda s: 4, attempts=3)


async def test_repeated_events_are_aggregated_into_one_with_a_count(sim_cluster: Cluster, kube: KubeClient) -> None:
    dep = await sim_cluster.create(deployment_manifest("web"))
    recorder = EventRecorder(kube)
    ref = ObjectRef.of(dep)
    await recorder.emit(ref, type="Normal", reason="Scaled", message="2 -> 4: forecast p90 3.1 cores")
    await recorder.emit(ref, type="Normal", reason="Scaled", message="2 -> 4: forecast p90 3.1 cores")
    await recorder.emit(ref, type="Warning", reason="BadAnnotation", message="aihpa/max-replicas: 'x' is not a number")
    events = sim_cluster.list("v1", "Event", "default")
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 2
    assert by_reason["Scaled"]["count"] == 2
    assert by_reason["Scaled"]["involvedObject"]["name"] == "web"
    assert by_reason["BadAnnotation"]["type"] == "Warning"


async def test_an_event_that_cannot_be_written_does_not_raise(sim_cluster: Cluster, kube: KubeClient) -> None:
    sim_cluster.faults.add(Fault(verb="create", resource="events", status=403))
    ref = ObjectRef(api_version="apps/v1", kind="Deployment", namespace="default", name="web")
    assert await EventRecorder(kube).emit(ref, type="Normal", reason="Scaled", message="x") is None


async def test_one_leader_at_a_time_and_takeover_after_the_lease_expires(
    sim_cluster: Cluster, sim_api_client: Any
) -> None:
    clock = sim_cluster.clock
    a = LeaderElector(KubeClient(sim_api_client, clock=clock), namespace="aihpa", name="aihpa-controller",
                      identity="a")
    b = LeaderElector(KubeClient(sim_api_client, clock=clock), namespace="aihpa", name="aihpa-controller",
                      identity="b")
    await sim_cluster.ensure_namespace("aihpa")
    await a.step()
    await b.step()
    assert a.is_leader and not b.is_leader
    await sim_cluster.advance(2)
    await a.step()  # renews
    await b.step()
    assert a.is_leader and not b.is_leader
    await sim_cluster.advance(16)  # a stops renewing (say, its node froze): the lease lapses
    await b.step()
    assert b.is_leader
    await a.step()  # a cannot renew, and it is past its renew deadline: it steps down
    assert not a.is_leader
    lease = sim_cluster.get("coordination.k8s.io/v1", "Lease", "aihpa-controller", "aihpa")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1


async def test_a_leader_that_stops_hands_the_lease_over_at_once(sim_cluster: Cluster, sim_api_client: Any) -> None:
    clock = sim_cluster.clock
    await sim_cluster.ensure_namespace("aihpa")
    a = LeaderElector(KubeClient(sim_api_client, clock=clock), namespace="aihpa", name="l", identity="a")
    b = LeaderElector(KubeClient(sim_api_client, clock=clock), namespace="aihpa", name="l", identity="b")
    await a.run(max_rounds=1)  # one round, then shutdown releases the lease
    assert not a.is_leader
    await b.step()
    assert b.is_leader
