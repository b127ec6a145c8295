"""Watch as the API server does it: resume from a resourceVersion, bookmarks, timeouts, 410 Gone, filtered streams."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from aihpa.sim import Cluster
from aihpa.sim.testing import deployment_manifest

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


async def _read_events(resp: aiohttp.ClientResponse, *, limit: int = 100) -> list[dict[str, Any]]:
    events = []
    async for line in resp.content:
        if line.strip():
            events.append(json.loads(line))
        if len(events) >= limit:
            break
    return events


async def test_watch_from_a_resource_version_replays_only_later_changes(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("old"))
    rv = sim_cluster.store.resource_version
    await sim_cluster.create(deployment_manifest("new"))
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": str(rv),
                                             "timeoutSeconds": "1"}) as resp:
        assert resp.status == 200
        events = await _read_events(resp)
    names = {(e["type"], e["object"]["metadata"]["name"]) for e in events}
    assert ("ADDED", "new") in names
    assert not any(name == "old" for _, name in names)
    assert all(int(e["object"]["metadata"]["resourceVersion"]) > rv for e in events)


async def test_watch_without_resource_version_starts_with_the_current_objects(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("a"))
    await sim_cluster.create(deployment_manifest("b"))
    async with http.get(DEPLOYMENTS, params={"watch": "1", "timeoutSeconds": "1"}) as resp:
        events = await _read_events(resp)
    added = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert added[:2] == ["a", "b"]


async def test_watch_sends_bookmarks_and_ends_at_its_timeout(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    rv = sim_cluster.store.resource_version
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": str(rv),
                                             "allowWatchBookmarks": "true", "timeoutSeconds": "1"}) as resp:
        events = await _read_events(resp)  # ends by itself: the server closes the stream at timeoutSeconds
    assert events, "expected at least one bookmark within a second (bookmark interval 0.2 s)"
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert events[0]["object"]["kind"] == "Deployment"
    assert int(events[-1]["object"]["metadata"]["resourceVersion"]) >= rv


async def test_too_old_resource_version_answers_410_expired(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    await sim_cluster.create(deployment_manifest("a"))
    old = sim_cluster.store.resource_version
    await sim_cluster.create(deployment_manifest("b"))
    sim_cluster.compact()
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": str(old - 1)}) as resp:
        assert resp.status == 200
        events = await _read_events(resp)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


async def test_label_filtered_watch_sees_objects_enter_and_leave(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    rv = sim_cluster.store.resource_version
    async with http.patch(f"{DEPLOYMENTS}/web", json={"metadata": {"labels": {"tier": "front"}}},
                          headers={"Content-Type": "application/merge-patch+json"}) as resp:
        assert resp.status == 200
    async with http.patch(f"{DEPLOYMENTS}/web", json={"metadata": {"labels": {"tier": None}}},
                          headers={"Content-Type": "application/merge-patch+json"}) as resp:
        assert resp.status == 200
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": str(rv), "timeoutSeconds": "1",
                                             "labelSelector": "tier=front"}) as resp:
        events = await _read_events(resp)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_initial_events_end_with_an_annotated_bookmark(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("a"))
    async with http.get(DEPLOYMENTS, params={"watch": "true", "sendInitialEvents": "true",
                                             "allowWatchBookmarks": "true", "timeoutSeconds": "1",
                                             "resourceVersionMatch": "NotOlderThan"}) as resp:
        events = await _read_events(resp, limit=2)
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    await sim_cluster.quiesce()


async def test_list_pagination_returns_a_continue_token(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    for name in ("a", "b", "c"):
        await sim_cluster.create(deployment_manifest(name))
    async with http.get(DEPLOYMENTS, params={"limit": "2"}) as resp:
        first = await resp.json()
    assert [d["metadata"]["name"] for d in first["items"]] == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 1
    async with http.get(DEPLOYMENTS, params={"limit": "2", "continue": first["metadata"]["continue"]}) as resp:
        second = await resp.json()
    assert [d["metadata"]["name"] for d in second["items"]] == ["c"]
    assert "continue" not in second["metadata"]


async def test_watching_one_object_by_name_sees_only_that_object(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("a"))
    await sim_cluster.create(deployment_manifest("b"))
    for path, params in [(f"{DEPLOYMENTS}/b", {"watch": "true"}),
                         ("/apis/apps/v1/watch/namespaces/default/deployments/b", {}),
                         (DEPLOYMENTS, {"watch": "true", "fieldSelector": "metadata.name=b"})]:
        async with http.get(path, params={**params, "timeoutSeconds": "1"}) as resp:
            events = await _read_events(resp, limit=1)
        assert [e["object"]["metadata"]["name"] for e in events] == ["b"], path
    await sim_cluster.quiesce()
