"""Every Deployment and Scale the sim hands out, by any route, satisfies the official Kubernetes schemas."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from aihpa.sim import Cluster
from aihpa.sim.testing import deployment_manifest
from tests.sim.conftest import assert_valid

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}


async def test_every_deployment_and_scale_returned_is_schema_valid(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    returned: list[dict[str, Any]] = []
    rv = str(sim_cluster.store.resource_version)

    async def call(method: str, path: str, **kw: Any) -> None:
        async with http.request(method, path, **kw) as resp:
            assert resp.status in (200, 201), await resp.text()
            body = await resp.json()
        if body.get("kind") == "DeploymentList":
            returned.extend(body["items"])
        else:
            returned.append(body)

    await call("POST", DEPLOYMENTS, json=deployment_manifest("web", replicas=2))
    await call("GET", f"{DEPLOYMENTS}/web")
    await call("GET", DEPLOYMENTS)
    await call("GET", "/apis/apps/v1/deployments")
    await call("GET", f"{DEPLOYMENTS}/web/scale")
    await call("PATCH", f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": 4}}, headers=MERGE)
    await call("PATCH", f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": 3}}, headers=SMP)
    await call("PATCH", f"{DEPLOYMENTS}/web/scale", json=[{"op": "replace", "path": "/spec/replicas", "value": 2}],
               headers={"Content-Type": "application/json-patch+json"})
    # the deployment's status moved on after the patch (as the controller would): read, then replace
    await call("GET", f"{DEPLOYMENTS}/web/scale")
    await call("PUT", f"{DEPLOYMENTS}/web/scale", json={**returned[-1], "spec": {"replicas": 5}})
    await sim_cluster.advance(10)
    await call("PATCH", f"{DEPLOYMENTS}/web", json={"metadata": {"labels": {"x": "y"}}}, headers=SMP)
    current = sim_cluster.get("apps/v1", "Deployment", "web")
    assert current is not None
    await call("PUT", f"{DEPLOYMENTS}/web", json=current)
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as resp:
        returned.extend([json.loads(line)["object"] async for line in resp.content if line.strip()])

    kinds = {o["kind"] for o in returned}
    assert kinds == {"Deployment", "Scale"}
    assert len(returned) > 15
    for obj in returned:
        assert_valid(obj)
