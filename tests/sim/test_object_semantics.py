"""API-server semantics beyond plain CRUD: subresources, cascades, dry runs, preconditions, custom resources."""

from __future__ import annotations

import aiohttp

from aihpa.sim import Cluster
from aihpa.sim.testing import deployment_manifest

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_status_subresource_and_main_resource_each_ignore_the_other_half(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    async with http.patch(f"{DEPLOYMENTS}/web", json={"status": {"replicas": 99}}, headers=MERGE) as resp:
        body = await resp.json()
    assert body["status"]["replicas"] == 2
    async with http.patch(f"{DEPLOYMENTS}/web/status", json={"spec": {"replicas": 7}, "status": {"replicas": 5}},
                          headers=MERGE) as resp:
        body = await resp.json()
    assert (body["spec"]["replicas"], body["status"]["replicas"]) == (2, 5)
    assert body["metadata"]["generation"] == 1


async def test_deleting_a_namespace_deletes_what_it_holds(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    await sim_cluster.ensure_namespace("team-a")
    await sim_cluster.create(deployment_manifest("web", namespace="team-a", replicas=2))
    assert len(sim_cluster.list("v1", "Pod", "team-a")) == 2
    async with http.delete("/api/v1/namespaces/team-a") as resp:
        assert resp.status == 200
    assert sim_cluster.list("apps/v1", "Deployment", "team-a") == []
    assert sim_cluster.list("v1", "Pod", "team-a") == []
    async with http.post("/apis/apps/v1/namespaces/team-a/deployments",
                         json=deployment_manifest("web", namespace="team-a")) as resp:
        assert resp.status == 404


async def test_dry_run_validates_without_storing(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    rv = sim_cluster.store.resource_version
    async with http.post(DEPLOYMENTS, params={"dryRun": "All"}, json=deployment_manifest("web")) as resp:
        assert resp.status == 201
        assert (await resp.json())["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    assert sim_cluster.get("apps/v1", "Deployment", "web") is None
    assert sim_cluster.store.resource_version == rv


async def test_generate_name_and_delete_preconditions(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    body = deployment_manifest("ignored")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "web-"
    async with http.post(DEPLOYMENTS, json=body) as resp:
        created = await resp.json()
    name = created["metadata"]["name"]
    assert name.startswith("web-")
    assert len(name) == len("web-") + 5
    stale = {"preconditions": {"resourceVersion": "1"}}
    async with http.delete(f"{DEPLOYMENTS}/{name}", json=stale) as resp:
        assert resp.status == 409
    async with http.delete(f"{DEPLOYMENTS}/{name}",
                           json={"preconditions": {"uid": created["metadata"]["uid"]}}) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "Success"


async def test_unchanged_update_keeps_the_resource_version(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    stored = sim_cluster.get("apps/v1", "Deployment", "web")
    assert stored is not None
    rv = sim_cluster.store.resource_version
    async with http.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 1}}, headers=MERGE) as resp:
        body = await resp.json()
    assert body["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert body["metadata"]["generation"] == 1
    assert sim_cluster.store.resource_version == rv  # no event either


async def test_server_side_apply_creates_then_updates(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    headers = {"Content-Type": "application/apply-patch+yaml"}
    params = {"fieldManager": "test"}
    async with http.patch(f"{DEPLOYMENTS}/web", params=params, json=deployment_manifest("web"),
                          headers=headers) as resp:
        assert resp.status == 201
    body = deployment_manifest("web", replicas=3)
    async with http.patch(f"{DEPLOYMENTS}/web", params=params, json=body, headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["spec"]["replicas"] == 3


async def test_custom_resource_definitions_add_resources_to_discovery(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]},
    })
    async with http.get("/apis/example.com/v1") as resp:
        resources = [r["name"] for r in (await resp.json())["resources"]]
    assert resources == ["widgets"]
    async with http.post("/apis/example.com/v1/namespaces/default/widgets",
                         json={"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                               "spec": {"size": 1}}) as resp:
        assert resp.status == 201
    async with http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com") as resp:
        assert resp.status == 200
    async with http.get("/apis/example.com/v1/namespaces/default/widgets") as resp:
        assert resp.status == 404


async def test_discovery_documents_describe_the_served_resources(http: aiohttp.ClientSession) -> None:
    async with http.get("/api") as resp:
        assert (await resp.json())["versions"] == ["v1"]
    async with http.get("/apis") as resp:
        groups = {g["name"]: g["preferredVersion"]["version"] for g in (await resp.json())["groups"]}
    assert groups["apps"] == "v1"
    assert groups["metrics.k8s.io"] == "v1beta1"
    assert groups["autoscaling"] == "v2"
    assert groups["coordination.k8s.io"] == "v1"
    async with http.get("/apis/apps/v1") as resp:
        resources = {r["name"]: r for r in (await resp.json())["resources"]}
    assert resources["deployments/scale"]["kind"] == "Scale"
    assert resources["deployments/scale"]["group"] == "autoscaling"
    assert "watch" in resources["deployments"]["verbs"]
    async with http.get("/version") as resp:
        assert (await resp.json())["major"] == "1"
