"""Published profile ConfigMaps: stable shards, the manifests the controller applies, the webhook's watched cache."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any, cast

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.k8s import KubeClient, NotFoundError, WatchEvent, WatchSettings
from aihpa.profiles import (
    InMemoryProfileSource,
    ProfileError,
    ProfileSource,
    ReplicaProfile,
    configmap_key,
    configmaps_for,
    shard_of,
)
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.webhook.profile_configmaps import ConfigMapProfileSource
from tests.webhook.conftest import K8S_VERSION, NOW, profile

NAMESPACE = "aihpa"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
FAST = WatchSettings(timeout_seconds=30, inactivity_timeout=10.0, backoff=(0.01,))
LIMIT_S = 5.0


def test_the_shard_is_a_stable_hash_of_the_workload() -> None:
    # Fixed values: a publisher and a reader in different processes, or releases, must agree.
    assert [shard_of("shop", "web", 8), shard_of("shop", "checkout", 8), shard_of("ml", "train", 8)] == [6, 7, 6]
    assert shard_of("shop", "web", 16) == int.from_bytes(hashlib.sha256(b"shop.web").digest()[:8], "big") % 16 == 14
    assert shard_of("shop", "web", 1) == 0


def test_shards_spread_workloads_across_every_configmap() -> None:
    counts = [0] * 4
    for i in range(400):
        counts[shard_of("ns", f"w{i}", 4)] += 1
    assert all(60 <= c <= 140 for c in counts), counts


@pytest.mark.parametrize("shards", [0, -1, True, 1.5])
def test_a_shard_count_below_one_is_refused(shards: Any) -> None:
    with pytest.raises(ValueError, match="shards"):
        shard_of("shop", "web", shards)
    with pytest.raises(ValueError, match="shards"):
        configmaps_for([], namespace=NAMESPACE, shards=shards)


def test_configmaps_hold_each_profile_in_its_shard_and_read_back_unchanged() -> None:
    profiles = [profile(name=f"web-{i}", app=f"app-{i}") for i in range(10)]
    manifests = configmaps_for(profiles, namespace=NAMESPACE, shards=3)
    assert [m["metadata"]["name"] for m in manifests] == ["aihpa-profiles-0", "aihpa-profiles-1", "aihpa-profiles-2"]
    for shard, manifest in enumerate(manifests):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
        assert manifest["metadata"]["namespace"] == NAMESPACE
        assert manifest["metadata"]["labels"]["aihpa/profiles"] == "true"
        expected = [p for p in profiles if shard_of(p.namespace, p.name, 3) == shard]
        assert manifest["data"] == InMemoryProfileSource(expected).to_configmap_data()
        assert list(manifest["data"]) == sorted(manifest["data"])
    read_back = {k: v for m in manifests for k, v in m["data"].items()}
    source, errors = InMemoryProfileSource.from_configmap_data(read_back)
    assert errors == []
    assert all(source.by_workload(p.namespace, p.name) == p for p in profiles)


def test_empty_shards_are_published_so_stale_profiles_are_cleared() -> None:
    manifests = configmaps_for([profile()], namespace=NAMESPACE, shards=4)
    assert len(manifests) == 4
    assert sum(1 for m in manifests if m["data"]) == 1


def test_the_newest_profile_of_a_workload_given_twice_is_published() -> None:
    old, new = profile(peak=5, generated_at=NOW), profile(peak=9, generated_at=NOW + 60)
    (manifest,) = configmaps_for([new, old], namespace=NAMESPACE, shards=1)
    assert ReplicaProfile.from_json(manifest["data"][configmap_key("shop", "web")]) == new


def test_a_shard_over_the_configmap_size_limit_is_refused() -> None:
    big = [profile(name=f"web-{i}", app=None) for i in range(4000)]
    with pytest.raises(ProfileError, match="more shards"):
        configmaps_for(big, namespace=NAMESPACE, shards=1)
    assert len(configmaps_for(big, namespace=NAMESPACE, shards=8)) == 8


def test_the_configmap_source_is_a_profile_source() -> None:
    assert isinstance(offline_source(), ProfileSource)


def offline_source() -> ConfigMapProfileSource:
    """A source fed by hand with `apply`: its client is never used."""
    return ConfigMapProfileSource(KubeClient(cast(ApiClient, None)), namespace=NAMESPACE)


def _configmap(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NAMESPACE}, "data": data}


def test_watch_events_replace_and_remove_one_configmap_at_a_time() -> None:
    source = offline_source()
    web, checkout = profile(), profile(name="checkout-v1", app="checkout", peak=7)
    shard0 = _configmap("aihpa-profiles-0", InMemoryProfileSource([web]).to_configmap_data())
    shard1 = _configmap("aihpa-profiles-1", InMemoryProfileSource([checkout]).to_configmap_data())
    assert not source.synced and source.by_workload("shop", "web") is None  # before the first list: nothing, no wait
    source.apply(WatchEvent(type="SYNC", items=(shard0,)))
    assert source.synced and source.by_workload("shop", "web") == web and len(source) == 1
    source.apply(WatchEvent(type="ADDED", object=shard1))
    assert source.by_app("shop", "checkout") == checkout and len(source) == 2
    source.apply(WatchEvent(type="MODIFIED", object=_configmap("aihpa-profiles-0", {})))
    assert source.by_workload("shop", "web") is None and len(source) == 1
    source.apply(WatchEvent(type="DELETED", object=shard1))
    assert len(source) == 0
    source.apply(WatchEvent(type="SYNC", items=(shard0, shard1)))
    assert len(source) == 2
    source.apply(WatchEvent(type="SYNC", items=()))  # a relist replaces everything: deletions missed are dropped
    assert len(source) == 0


def test_bad_entries_are_skipped_and_reported_while_the_rest_serve() -> None:
    source = offline_source()
    good = profile()
    data = {
        **InMemoryProfileSource([good]).to_configmap_data(),
        "shop.broken": "{not json",
        "nodot": "{}",
        "shop.other": profile(name="elsewhere").to_json(),
        "shop.number": 7,
    }
    source.apply(WatchEvent(type="SYNC", items=(_configmap("aihpa-profiles-0", data), {"metadata": {}})))
    source.apply(WatchEvent(type="ADDED", object=_configmap("aihpa-profiles-1", "not a map")))  # type: ignore[arg-type]
    assert source.by_workload("shop", "web") == good
    assert len(source) == 1
    skipped = source.errors["aihpa-profiles-0"]
    assert len(skipped) == 4 and any(line.startswith("shop.broken") for line in skipped)
    assert source.errors["aihpa-profiles-1"] == ["data: not a map"]


def test_a_workload_in_two_shards_while_resharding_is_served_from_the_newer_profile() -> None:
    source = offline_source()
    old, new = profile(peak=5, generated_at=NOW), profile(peak=9, generated_at=NOW + 60)
    source.apply(WatchEvent(type="SYNC", items=(
        _configmap("aihpa-profiles-0", InMemoryProfileSource([new]).to_configmap_data()),
        _configmap("aihpa-profiles-1", InMemoryProfileSource([old]).to_configmap_data()),
    )))  # fmt: skip
    assert source.by_workload("shop", "web") == new
    assert source.by_app("shop", "web") == new


@contextlib.asynccontextmanager
async def watching(source: ConfigMapProfileSource, **kwargs: Any) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(source.run(**kwargs))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _publish(kube: KubeClient, profiles: list[ReplicaProfile], *, shards: int) -> None:
    for manifest in configmaps_for(profiles, namespace=NAMESPACE, shards=shards):
        name = manifest["metadata"]["name"]
        try:
            current = await kube.get(f"{CONFIGMAPS}/{name}")
        except NotFoundError:
            await kube.request("POST", CONFIGMAPS, body=manifest)
        else:
            manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await kube.request("PUT", f"{CONFIGMAPS}/{name}", body=manifest)


async def test_the_source_follows_the_published_configmaps_in_the_cluster(
    sim_cluster: Cluster, kube: KubeClient
) -> None:
    await sim_cluster.ensure_namespace(NAMESPACE)
    web, checkout = profile(), profile(name="checkout-v1", app="checkout", peak=7)
    await _publish(kube, [web], shards=2)
    # An unlabeled ConfigMap in the same namespace is not a profile shard, whatever it holds.
    await kube.request("POST", CONFIGMAPS, body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"},
        "data": InMemoryProfileSource([checkout]).to_configmap_data(),
    })  # fmt: skip
    source = ConfigMapProfileSource(kube, namespace=NAMESPACE, settings=FAST)
    async with watching(source):
        async with asyncio.timeout(LIMIT_S):
            await source.wait_until(lambda s: s.synced)
        assert source.by_workload("shop", "web") == web and len(source) == 1
        await _publish(kube, [web, checkout], shards=2)
        async with asyncio.timeout(LIMIT_S):
            await source.wait_until(lambda s: s.by_app("shop", "checkout") == checkout)
        shard = shard_of("shop", "web", 2)
        await kube.request("DELETE", f"{CONFIGMAPS}/aihpa-profiles-{shard}")
        async with asyncio.timeout(LIMIT_S):
            await source.wait_until(lambda s: s.by_workload("shop", "web") is None)
    await sim_cluster.quiesce()


async def test_a_permanent_api_error_keeps_serving_the_cache_and_does_not_crash(
    sim_cluster: Cluster, kube: KubeClient
) -> None:
    await sim_cluster.ensure_namespace(NAMESPACE)
    await _publish(kube, [profile()], shards=1)
    source = ConfigMapProfileSource(kube, namespace=NAMESPACE, settings=FAST)
    async with watching(source):
        async with asyncio.timeout(LIMIT_S):
            await source.wait_until(lambda s: s.synced)
    # RBAC taken away: the relist is refused; the run ends (bounded by the test seam) instead of raising.
    fault = sim_cluster.faults.add(Fault(verb="list", resource="configmaps", status=403))
    await source.run(max_cycles=1)
    assert fault.fired == 1
    assert source.last_error is not None and "configmaps" in source.last_error
    assert source.by_workload("shop", "web") is not None
    await sim_cluster.quiesce()
