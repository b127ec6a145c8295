"""The layered watch: list then watch, relist on 410 Gone, reconnect after a dropped stream, no lost events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aihpa.k8s import KubeClient, WatchEvent, WatchSettings, watch_objects
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest

PATH = "/apis/apps/v1/deployments"
FAST = WatchSettings(timeout_seconds=30, inactivity_timeout=10.0, backoff=(0.01,))


@contextlib.asynccontextmanager
async def watching(kube: KubeClient, **kwargs: object) -> AsyncIterator[asyncio.Queue[WatchEvent]]:
    queue: asyncio.Queue[WatchEvent] = asyncio.Queue()

    async def pump() -> None:
        async for event in watch_objects(kube, PATH, params={"labelSelector": "aihpa/enabled=true"},
                                         settings=FAST, **kwargs):  # type: ignore[arg-type]
            await queue.put(event)

    task = asyncio.create_task(pump())
    try:
        yield queue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_event(
    queue: asyncio.Queue[WatchEvent], *types: str, where: Callable[[WatchEvent], bool] = lambda e: True
) -> WatchEvent:
    """The next event of one of `types` that satisfies `where` (others skipped), within 5 s."""
    async with asyncio.timeout(5):
        while True:
            event = await queue.get()
            if event.type in types and where(event):
                return event


def labeled(name: str) -> dict[str, object]:
    return deployment_manifest(name, labels={"aihpa/enabled": "true"})


async def test_list_then_watch_sees_adds_changes_and_deletes(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(labeled("first"))
    await sim_cluster.create(deployment_manifest("unlabeled"))
    async with watching(kube) as events:
        sync = await next_event(events, "SYNC")
        assert [o["metadata"]["name"] for o in sync.items] == ["first"]
        await sim_cluster.create(labeled("second"))
        added = await next_event(events, "ADDED")
        assert added.object["metadata"]["name"] == "second"
        await sim_cluster.scale("second", 4)
        changed = await next_event(events, "MODIFIED", where=lambda e: e.object["metadata"]["name"] == "second"
                                   and e.object["spec"]["replicas"] != 1)
        assert changed.object["spec"]["replicas"] == 4
        await kube.request("DELETE", "/apis/apps/v1/namespaces/default/deployments/first")
        deleted = await next_event(events, "DELETED")
        assert deleted.object["metadata"]["name"] == "first"
    await sim_cluster.quiesce()


async def test_a_gone_watch_lists_again(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.create(labeled("a"))
    fault = sim_cluster.faults.add(Fault(verb="watch", resource="deployments", status=410, times=1))
    async with watching(kube) as events:
        first = await next_event(events, "SYNC")
        second = await next_event(events, "SYNC")  # the 410 made it relist
        assert fault.fired == 1
        assert [o["metadata"]["name"] for o in first.items] == [o["metadata"]["name"] for o in second.items] == ["a"]
        await sim_cluster.create(labeled("b"))
        assert (await next_event(events, "ADDED")).object["metadata"]["name"] == "b"
    await sim_cluster.quiesce()


async def test_a_dropped_stream_resumes_without_losing_events(sim_cluster: Cluster, kube: KubeClient) -> None:
    fault = sim_cluster.faults.add(Fault(verb="watch", resource="deployments", drop_after_events=1, abort=True,
                                         times=1))
    async with watching(kube) as events:
        await next_event(events, "SYNC")
        for name in ("x", "y", "z"):
            await sim_cluster.create(labeled(name))
        # the stream breaks after the first event; the watch relists, and every object is seen by one path or other
        seen: set[str] = set()
        syncs = 0
        async with asyncio.timeout(5):
            while seen != {"x", "y", "z"}:
                event = await events.get()
                if event.type == "SYNC":
                    syncs += 1
                    seen |= {o["metadata"]["name"] for o in event.items}
                elif event.type == "ADDED":
                    seen.add(event.object["metadata"]["name"])
        assert fault.fired == 1
        assert syncs == 1
    await sim_cluster.quiesce()


async def test_the_outer_loop_is_bounded_for_tests(sim_cluster: Cluster, kube: KubeClient) -> None:
    sim_cluster.faults.add(Fault(verb="list", resource="deployments", status=503))
    seen = [e async for e in watch_objects(kube, PATH, settings=FAST, max_cycles=2)]
    assert seen == []
