"""kubernetes-asyncio, unchanged, against the simulated cluster: create, list, watch, scale, leases, events."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from aihpa.sim import Cluster
from aihpa.sim.testing import deployment_manifest
from tests.sim.conftest import assert_valid


async def test_created_deployment_is_listed_and_matches_the_official_schema(
    sim_cluster: Cluster, sim_api_client: client.ApiClient
) -> None:
    apps = client.AppsV1Api(sim_api_client)
    created = await apps.create_namespaced_deployment("default", deployment_manifest("web", replicas=2))
    assert created.metadata.resource_version
    assert created.metadata.generation == 1

    listed = await apps.list_namespaced_deployment("default")
    assert [d.metadata.name for d in listed.items] == ["web"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    raw = sim_cluster.get("apps/v1", "Deployment", "web")
    assert raw is not None
    assert_valid(raw)
    for pod in sim_cluster.list("v1", "Pod", "default"):
        assert_valid(pod)


async def test_scale_subresource_reads_and_patches_replicas(
    sim_cluster: Cluster, sim_api_client: client.ApiClient
) -> None:
    apps = client.AppsV1Api(sim_api_client)
    await apps.create_namespaced_deployment("default", deployment_manifest("web", replicas=2))

    scale = await apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    assert_valid(sim_api_client.sanitize_for_serialization(scale))

    patched = await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    assert patched.spec.replicas == 5
    assert_valid(sim_api_client.sanitize_for_serialization(patched))

    dep = await apps.read_namespaced_deployment("web", "default")
    assert dep.spec.replicas == 5
    assert dep.metadata.generation == 2
    assert dep.status.observed_generation == 2
    assert len(sim_cluster.list("v1", "Pod", "default")) == 5
    assert_valid(sim_cluster.get("apps/v1", "Deployment", "web") or {})


async def test_stale_scale_update_is_a_conflict(sim_cluster: Cluster, sim_api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(sim_api_client)
    await apps.create_namespaced_deployment("default", deployment_manifest("web", replicas=1))
    scale = await apps.read_namespaced_deployment_scale("web", "default")
    await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})

    scale.spec.replicas = 4
    with pytest.raises(ApiException) as info:
        await apps.replace_namespaced_deployment_scale("web", "default", scale)
    assert info.value.status == 409
    assert '"reason":"Conflict"' in info.value.body

    fresh = await apps.read_namespaced_deployment_scale("web", "default")
    fresh.spec.replicas = 4
    replaced = await apps.replace_namespaced_deployment_scale("web", "default", fresh)
    assert replaced.spec.replicas == 4


async def test_watch_streams_changes_after_a_list(sim_cluster: Cluster, sim_api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(sim_api_client)
    await apps.create_namespaced_deployment("default", deployment_manifest("a"))
    listed = await apps.list_namespaced_deployment("default")
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        w = watch.Watch()
        async with w.stream(apps.list_namespaced_deployment, "default",
                            resource_version=listed.metadata.resource_version, timeout_seconds=10) as stream:
            async for event in stream:
                seen.append((event["type"], event["object"].metadata.name))
                if event["type"] == "DELETED":
                    w.stop()
                    return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)  # let the watch connect; events meanwhile are replayed from history anyway
    await apps.create_namespaced_deployment("default", deployment_manifest("b"))
    await apps.delete_namespaced_deployment("a", "default")
    await asyncio.wait_for(task, 10)
    assert ("ADDED", "b") in seen
    assert ("DELETED", "a") in seen
    assert seen.index(("ADDED", "b")) < seen.index(("DELETED", "a"))
    await sim_cluster.quiesce()


async def test_leases_support_optimistic_concurrency(sim_api_client: client.ApiClient) -> None:
    coord = client.CoordinationV1Api(sim_api_client)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="aihpa-leader"),
        spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
    )
    created = await coord.create_namespaced_lease("default", lease)
    created.spec.holder_identity = "b"
    updated = await coord.replace_namespaced_lease("aihpa-leader", "default", created)
    assert updated.spec.holder_identity == "b"
    assert updated.metadata.resource_version != created.metadata.resource_version

    created.spec.holder_identity = "c"  # still carries the old resourceVersion
    with pytest.raises(ApiException) as info:
        await coord.replace_namespaced_lease("aihpa-leader", "default", created)
    assert info.value.status == 409


async def test_core_and_events_api_events_share_one_storage(sim_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(sim_api_client)
    events = client.EventsV1Api(sim_api_client)
    ref = client.V1ObjectReference(kind="Deployment", name="web", namespace="default", api_version="apps/v1")
    await core.create_namespaced_event("default", client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="web.1"), involved_object=ref, reason="Scaled", message="to 3",
        type="Normal"))
    await events.create_namespaced_event("default", client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="web.2"), event_time=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        regarding=ref, reason="Scaled",
        note="to 4", type="Normal", action="Scale", reporting_controller="aihpa", reporting_instance="aihpa-0"))
    core_listed = await core.list_namespaced_event("default", field_selector="metadata.name=web.1")
    assert [e.message for e in core_listed.items] == ["to 3"]
    # one storage, two APIs: each event reads through both, converted as the API server converts
    new_listed = await events.list_namespaced_event("default")
    assert [(e.metadata.name, e.note) for e in new_listed.items] == [("web.1", "to 3"), ("web.2", "to 4")]
    assert new_listed.items[0].regarding.name == "web"
    as_core = await core.read_namespaced_event("web.2", "default")
    assert (as_core.message, as_core.involved_object.kind, as_core.reporting_component) == (
        "to 4", "Deployment", "aihpa")


async def test_label_and_field_selectors_filter_lists(sim_api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(sim_api_client)
    await apps.create_namespaced_deployment("default", deployment_manifest("a", labels={"tier": "web"}))
    await apps.create_namespaced_deployment("default", deployment_manifest("b", labels={"tier": "db"}))
    await apps.create_namespaced_deployment("default", deployment_manifest("c"))

    async def names(**kw: Any) -> list[str]:
        return [d.metadata.name for d in (await apps.list_namespaced_deployment("default", **kw)).items]

    assert await names(label_selector="tier=web") == ["a"]
    assert await names(label_selector="tier!=web") == ["b", "c"]
    assert await names(label_selector="tier in (web,db)") == ["a", "b"]
    assert await names(label_selector="!tier") == ["c"]
    assert await names(field_selector="metadata.name=b") == ["b"]
    assert await names(field_selector="metadata.namespace=default,metadata.name!=a") == ["b", "c"]


async def test_strategic_merge_patch_merges_containers_by_name(sim_api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(sim_api_client)
    body = deployment_manifest("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox:1"})
    await apps.create_namespaced_deployment("default", body)
    patched = await apps.patch_namespaced_deployment("web", "default", {
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:2"}]}}},
    })
    containers = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert containers == {"app": "registry.k8s.io/pause:3.10", "sidecar": "busybox:2"}
    assert patched.metadata.labels["team"] == "a"
    assert patched.metadata.generation == 2


async def test_json_patch_list_bodies_are_applied(sim_api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(sim_api_client)
    await apps.create_namespaced_deployment("default", deployment_manifest("web", replicas=1))
    patched = await apps.patch_namespaced_deployment("web", "default", [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
    ])
    assert patched.spec.replicas == 3
    assert patched.metadata.annotations == {"a": "b"}


async def test_generic_kinds_round_trip(sim_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(sim_api_client)
    await core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cfg"), data={"k": "v"}))
    await core.create_namespaced_secret("default", client.V1Secret(
        metadata=client.V1ObjectMeta(name="sec"), string_data={"token": "x"}))
    hpa_api = client.AutoscalingV2Api(sim_api_client)
    await hpa_api.create_namespaced_horizontal_pod_autoscaler("default", client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            max_replicas=5, scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="web"))))
    assert (await core.read_namespaced_config_map("cfg", "default")).data == {"k": "v"}
    hpas = await hpa_api.list_namespaced_horizontal_pod_autoscaler("default")
    assert [h.spec.max_replicas for h in hpas.items] == [5]
    with pytest.raises(ApiException) as info:
        await core.read_namespaced_config_map("missing", "default")
    assert info.value.status == 404
    assert '"reason":"NotFound"' in info.value.body


async def test_expired_watch_raises_410_in_the_client(sim_cluster: Cluster, sim_api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(sim_api_client)
    await apps.create_namespaced_deployment("default", deployment_manifest("a"))
    old = (await apps.list_namespaced_deployment("default")).metadata.resource_version
    await apps.create_namespaced_deployment("default", deployment_manifest("b"))
    sim_cluster.compact()
    w = watch.Watch()
    with pytest.raises(ApiException) as info:
        async with w.stream(apps.list_namespaced_deployment, "default", resource_version=str(int(old) - 1),
                            timeout_seconds=5) as stream:
            async for _ in stream:
                pass
    assert info.value.status == 410
    await sim_cluster.quiesce()


async def test_pod_metrics_read_through_the_custom_objects_api(
    sim_cluster: Cluster, sim_api_client: client.ApiClient
) -> None:
    sim_cluster.attach("default", "web", lambda _t: 0.9)
    await sim_cluster.create(deployment_manifest("web", replicas=3))
    await sim_cluster.advance(5)
    custom = client.CustomObjectsApi(sim_api_client)
    listed = await custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods",
                                                        label_selector="app=web")
    assert len(listed["items"]) == 3
    assert {c["usage"]["cpu"] for item in listed["items"] for c in item["containers"]} == {"300000000n"}
    one = listed["items"][0]["metadata"]["name"]
    single = await custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods", one)
    assert single["kind"] == "PodMetrics"
