"""The sim refuses what a real API server refuses: replica counts beyond int32, bad resource versions, bodies nested too
deep, YAML alias bombs and field selectors on fields the kind does not support; each with a Status, never a 500."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import yaml

from aihpa.sim import Cluster
from aihpa.sim.server import MAX_BODY_DEPTH
from aihpa.sim.testing import Kubectl, deployment_manifest

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
EVENTS = "/api/v1/namespaces/default/events"
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
YAML = {"Content-Type": "application/yaml"}
INT32_MAX = 2**31 - 1


async def _status(resp: aiohttp.ClientResponse, code: int, reason: str) -> dict[str, Any]:
    assert resp.status == code, await resp.text()
    body = await resp.json()
    assert body["kind"] == "Status"
    assert body["code"] == code
    assert body["reason"] == reason
    return dict(body)


def _replicaset(replicas: Any) -> dict[str, Any]:
    dep = deployment_manifest("rs", replicas=1)
    return {**dep, "kind": "ReplicaSet", "spec": {**dep["spec"], "replicas": replicas}}


def _deployment(replicas: Any) -> dict[str, Any]:
    dep = deployment_manifest("big")
    return {**dep, "spec": {**dep["spec"], "replicas": replicas}}


def _scale(replicas: Any) -> dict[str, Any]:
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"},
            "spec": {"replicas": replicas}}


# ---- spec.replicas is an int32 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("replicas", [INT32_MAX + 1, 10**12, -1, 1.5, "3", True])
@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", DEPLOYMENTS, _deployment, JSON),
        ("POST", REPLICASETS, _replicaset, JSON),
        ("PATCH", f"{DEPLOYMENTS}/web", lambda r: {"spec": {"replicas": r}}, MERGE),
        ("PUT", f"{DEPLOYMENTS}/web/scale", _scale, JSON),
        ("PATCH", f"{DEPLOYMENTS}/web/scale", lambda r: {"spec": {"replicas": r}}, MERGE),
    ],
    ids=["create-deployment", "create-replicaset", "patch-deployment", "put-scale", "patch-scale"],
)
async def test_replicas_outside_int32_are_invalid_with_the_field_named(
    sim_cluster: Cluster, http: aiohttp.ClientSession, method: str, path: str, body: Any, headers: dict[str, str],
    replicas: Any,
) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=1))
    pods_before = len(sim_cluster.list("v1", "Pod"))
    async with http.request(method, path, data=json.dumps(body(replicas)), headers=headers) as resp:
        status = await _status(resp, 422, "Invalid")
    causes = status["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.replicas"]
    assert causes[0]["reason"] == "FieldValueInvalid"
    assert "spec.replicas" in status["message"]
    # nothing was written: no new object, no pods, the Deployment untouched
    assert sim_cluster.get("apps/v1", "Deployment", "big") is None
    assert sim_cluster.get("apps/v1", "ReplicaSet", "rs") is None
    web = sim_cluster.get("apps/v1", "Deployment", "web")
    assert web is not None
    assert web["spec"]["replicas"] == 1
    assert len(sim_cluster.list("v1", "Pod")) == pods_before


async def test_the_largest_int32_replica_count_is_accepted(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    sim_cluster.workloads.pod_capacity = sim_cluster.workloads.max_pending_pods = 2  # a small cluster: few pods
    await sim_cluster.create(deployment_manifest("web", replicas=1))
    async with http.put(f"{DEPLOYMENTS}/web/scale", json=_scale(INT32_MAX)) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["spec"]["replicas"] == INT32_MAX
    async with http.post(REPLICASETS, json=_replicaset(INT32_MAX)) as resp:
        assert resp.status == 201, await resp.text()
    assert len(sim_cluster.list("v1", "Pod")) == 4


async def test_kubectl_is_told_which_field_is_out_of_range(sim_cluster: Cluster, kubectl: Kubectl) -> None:
    manifest = yaml.safe_dump(deployment_manifest("web")).replace("replicas: 1", "replicas: 1e12")
    assert "1e12" in manifest
    applied = await kubectl("apply", "-f", "-", stdin=manifest)
    assert applied.rc != 0
    assert "spec.replicas" in applied.err
    assert sim_cluster.get("apps/v1", "Deployment", "web") is None

    await sim_cluster.create(deployment_manifest("web", replicas=1))
    scaled = await kubectl("scale", "deployment/web", f"--replicas={INT32_MAX + 1}")
    assert scaled.rc != 0
    assert "spec.replicas" in scaled.err
    assert "409" not in scaled.err and "Conflict" not in scaled.err
    web = sim_cluster.get("apps/v1", "Deployment", "web")
    assert web is not None
    assert web["spec"]["replicas"] == 1


# ---- resource versions -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rv", ["-5", "abc", "1.5", "+3", "18446744073709551616", "٣"])
@pytest.mark.parametrize("watch", [False, True], ids=["list", "watch"])
async def test_a_malformed_resource_version_is_a_bad_request(
    sim_cluster: Cluster, http: aiohttp.ClientSession, rv: str, watch: bool
) -> None:
    params = {"resourceVersion": rv, **({"watch": "true", "timeoutSeconds": "1"} if watch else {})}
    async with http.get(DEPLOYMENTS, params=params) as resp:
        status = await _status(resp, 400, "BadRequest")
    assert "invalid resource version" in status["message"]
    await sim_cluster.quiesce()


async def test_a_compacted_resource_version_is_gone_on_list_and_watch(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    rv = sim_cluster.store.resource_version
    await sim_cluster.create(deployment_manifest("web"))
    sim_cluster.compact()
    async with http.get(DEPLOYMENTS, params={"resourceVersion": str(rv), "resourceVersionMatch": "Exact"}) as resp:
        await _status(resp, 410, "Expired")
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": str(rv),
                                             "timeoutSeconds": "1"}) as resp:
        assert resp.status == 200
        lines = [json.loads(line) async for line in resp.content if line.strip()]
    assert [(e["type"], e["object"]["code"]) for e in lines] == [("ERROR", 410)]
    await sim_cluster.quiesce()


# ---- nesting and YAML aliases ------------------------------------------------------------------------------------

def _nested_configmap(depth: int) -> bytes:
    """A ConfigMap whose extra field nests `depth` levels in all (the object itself is level 1)."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "x": ' + inner + "}").encode()


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH + 1, 5_000, 100_000])
async def test_a_json_body_nested_too_deep_is_a_bad_request(
    sim_cluster: Cluster, http: aiohttp.ClientSession, depth: int
) -> None:
    async with http.post(CONFIGMAPS, data=_nested_configmap(depth), headers=JSON) as resp:
        status = await _status(resp, 400, "BadRequest")
    assert "nesting deeper than" in status["message"]
    assert sim_cluster.get("v1", "ConfigMap", "deep") is None


async def test_a_json_body_at_the_depth_limit_is_accepted(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    async with http.post(CONFIGMAPS, data=_nested_configmap(MAX_BODY_DEPTH), headers=JSON) as resp:
        assert resp.status == 201, await resp.text()
    assert sim_cluster.get("v1", "ConfigMap", "deep") is not None


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH + 1, 5_000])
async def test_a_yaml_body_nested_too_deep_is_a_bad_request(
    sim_cluster: Cluster, http: aiohttp.ClientSession, depth: int
) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nx: " + "[" * (depth - 1) + "]" * (depth - 1)
    async with http.post(CONFIGMAPS, data=body.encode(), headers=YAML) as resp:
        status = await _status(resp, 400, "BadRequest")
    assert "nesting deeper than" in status["message"]
    assert sim_cluster.get("v1", "ConfigMap", "deep") is None


_ALIAS_BOMB = """apiVersion: v1
kind: ConfigMap
metadata: {name: bomb}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""


@pytest.mark.parametrize("body", [_ALIAS_BOMB, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx: &x [*x]\n"],
                         ids=["billion-laughs", "recursive"])
async def test_a_yaml_alias_bomb_is_refused_before_it_expands(
    sim_cluster: Cluster, http: aiohttp.ClientSession, body: str
) -> None:
    assert len(body) < 600
    async with http.post(CONFIGMAPS, data=body.encode(), headers=YAML) as resp:
        status = await _status(resp, 400, "BadRequest")
    assert "alias" in status["message"]
    assert sim_cluster.get("v1", "ConfigMap", "bomb") is None


async def test_yaml_anchors_and_merge_keys_within_budget_still_work(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    body = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchors\n  labels: &l {app: web}\n"
            "  annotations:\n    <<: *l\n    tier: front\ndata:\n  a: &v hello\n  b: *v\n")
    async with http.post(CONFIGMAPS, data=body.encode(), headers=YAML) as resp:
        assert resp.status == 201, await resp.text()
    cm = sim_cluster.get("v1", "ConfigMap", "anchors")
    assert cm is not None
    assert cm["data"] == {"a": "hello", "b": "hello"}
    assert cm["metadata"]["annotations"] == {"app": "web", "tier": "front"}


# ---- field selectors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("path", "selector"),
    [
        (DEPLOYMENTS, "spec.foo=x"),
        (DEPLOYMENTS, "metadata.name=web,spec.replicas=1"),
        (PODS, "spec.foo=x"),
        (EVENTS, "spec.foo!=x"),
        (CONFIGMAPS, "data.key=x"),
    ],
)
@pytest.mark.parametrize("watch", [False, True], ids=["list", "watch"])
async def test_an_unknown_field_selector_is_a_bad_request(
    sim_cluster: Cluster, http: aiohttp.ClientSession, path: str, selector: str, watch: bool
) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    params = {"fieldSelector": selector, **({"watch": "true", "timeoutSeconds": "1"} if watch else {})}
    async with http.get(path, params=params) as resp:
        status = await _status(resp, 400, "BadRequest")
    label = [t.split("=")[0].rstrip("!") for t in selector.split(",")][-1]
    assert status["message"] == f"field label not supported: {label}"
    await sim_cluster.quiesce()


async def test_supported_field_selectors_still_filter(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    await sim_cluster.create(deployment_manifest("api", replicas=1))
    await sim_cluster.advance(5)
    await sim_cluster.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
                              "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default"},
                              "reason": "ScalingReplicaSet", "type": "Normal", "source": {"component": "sim"}})

    async def names(path: str, selector: str) -> list[str]:
        async with http.get(path, params={"fieldSelector": selector}) as resp:
            assert resp.status == 200, await resp.text()
            return [o["metadata"]["name"] for o in (await resp.json())["items"]]

    assert await names(DEPLOYMENTS, "metadata.name=api") == ["api"]
    assert await names(DEPLOYMENTS, "metadata.namespace=default,metadata.name!=api") == ["web"]
    assert len(await names(PODS, "status.phase=Running,spec.nodeName=sim-node-1")) == 3
    assert await names(PODS, "status.phase=Pending") == []
    assert await names(EVENTS, "involvedObject.kind=Deployment,involvedObject.name=web,type=Normal") == ["web.1"]
    assert await names(EVENTS, "source=sim") == ["web.1"]
    assert await names("/apis/events.k8s.io/v1/namespaces/default/events", "regarding.name=web") == ["web.1"]


async def test_kubectl_reports_an_unknown_field_selector(sim_cluster: Cluster, kubectl: Kubectl) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    result = await kubectl("get", "deployments", "--field-selector", "spec.foo=x")
    assert result.rc != 0
    assert "field label not supported: spec.foo" in result.err
    ok = await kubectl("get", "deployments", "--field-selector", "metadata.name=web", "-o", "name")
    assert ok.rc == 0, ok.err
    assert ok.out.split() == ["deployment.apps/web"]
