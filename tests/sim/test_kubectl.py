"""The real kubectl binary against the simulated cluster: exit codes and output, as a user would see them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from aihpa.sim import Cluster
from aihpa.sim.testing import Kubectl, deployment_manifest
from tests.sim.conftest import assert_valid, eventually

pytestmark = pytest.mark.slow

CHART = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: aihpa
  namespace: aihpa-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: aihpa
rules:
- apiGroups: ["apps"]
  resources: ["deployments", "deployments/scale"]
  verbs: ["get", "list", "watch", "patch", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: aihpa
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: aihpa}
subjects: [{kind: ServiceAccount, name: aihpa, namespace: aihpa-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: aihpa-leases, namespace: aihpa-system}
rules: [{apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: aihpa-leases, namespace: aihpa-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: aihpa-leases}
subjects: [{kind: ServiceAccount, name: aihpa, namespace: aihpa-system}]
---
apiVersion: v1
kind: Service
metadata: {name: aihpa-webhook, namespace: aihpa-system}
spec:
  selector: {app: aihpa}
  ports: [{name: https, port: 443, targetPort: 8443}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: aihpa, namespace: aihpa-system}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: aihpa}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: aihpa-config, namespace: aihpa-system}
data: {config.yaml: "leadTime: 120\\n"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: aihpa-train, namespace: aihpa-system}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: train, image: aihpa:0.1.0}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: aihpa
  namespace: aihpa-system
  labels: {app: aihpa}
spec:
  replicas: 2
  selector: {matchLabels: {app: aihpa}}
  template:
    metadata: {labels: {app: aihpa}}
    spec:
      serviceAccountName: aihpa
      containers:
      - name: controller
        image: aihpa:0.1.0
        ports: [{containerPort: 8443, name: https}]
        env: [{name: LOG_LEVEL, value: info}]
        resources: {requests: {cpu: 100m}, limits: {cpu: 500m}}
"""


async def test_kubectl_applies_a_rendered_chart_and_reapplies_it_unchanged(
    sim_cluster: Cluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    await sim_cluster.ensure_namespace("aihpa-system")
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(CHART)

    first = await kubectl("apply", "-f", str(manifest))
    assert first.rc == 0, first.err
    assert "deployment.apps/aihpa created" in first.out
    assert "poddisruptionbudget.policy/aihpa created" in first.out
    assert "clusterrolebinding.rbac.authorization.k8s.io/aihpa created" in first.out

    again = await kubectl("apply", "-f", str(manifest))
    assert again.rc == 0, again.err
    assert "deployment.apps/aihpa unchanged" in again.out

    manifest.write_text(CHART.replace("replicas: 2", "replicas: 4").replace("value: info", "value: debug"))
    changed = await kubectl("apply", "-f", str(manifest))
    assert changed.rc == 0, changed.err
    assert "deployment.apps/aihpa configured" in changed.out
    dep = sim_cluster.get("apps/v1", "Deployment", "aihpa", "aihpa-system")
    assert dep is not None
    assert dep["spec"]["replicas"] == 4
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert_valid(dep)


async def test_kubectl_get_prints_server_side_tables(sim_cluster: Cluster, kubectl: Kubectl) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    await sim_cluster.advance(10)  # past the 5 s start-up delay
    result = await kubectl("get", "deployments")
    assert result.rc == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["web", "2/2", "2", "2"]

    pods = await kubectl("get", "pods", "-l", "app=web", "-o", "name")
    assert pods.rc == 0, pods.err
    assert len(pods.out.split()) == 2
    assert all(p.startswith("pod/web-") for p in pods.out.split())

    missing = await kubectl("get", "deployment", "nope")
    assert missing.rc == 1
    assert 'deployments.apps "nope" not found' in missing.err

    unknown = await kubectl("get", "widgets")
    assert unknown.rc == 1
    assert 'the server doesn\'t have a resource type "widgets"' in unknown.err


async def test_kubectl_scale_label_and_annotate_change_the_deployment(
    sim_cluster: Cluster, kubectl: Kubectl
) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=1))

    scaled = await kubectl("scale", "deployment/web", "--replicas=3")
    assert scaled.rc == 0, scaled.err
    assert scaled.out.strip() == "deployment.apps/web scaled"

    labeled = await kubectl("label", "deployment", "web", "tier=front")
    assert labeled.rc == 0, labeled.err
    annotated = await kubectl("annotate", "deployment", "web", "aihpa.io/enabled=true")
    assert annotated.rc == 0, annotated.err

    dep = sim_cluster.get("apps/v1", "Deployment", "web")
    assert dep is not None
    assert dep["spec"]["replicas"] == 3
    assert dep["metadata"]["labels"]["tier"] == "front"
    assert dep["metadata"]["annotations"]["aihpa.io/enabled"] == "true"
    assert len(sim_cluster.list("v1", "Pod", "default")) == 3

    # scale with a precondition that no longer holds fails as against a real API server
    stale = await kubectl("scale", "deployment/web", "--replicas=5", "--current-replicas=1")
    assert stale.rc == 1
    assert "Expected replicas to be 1, was 3" in stale.err

    as_json = await kubectl("get", "deployment", "web", "-o", "json")
    assert as_json.rc == 0, as_json.err
    assert_valid(json.loads(as_json.out))


async def test_kubectl_get_watch_shows_changes_until_its_request_timeout(
    sim_cluster: Cluster, kubectl: Kubectl
) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=1))
    await sim_cluster.advance(10)
    # bounded by --request-timeout: kubectl ends the watch itself and exits 0
    watching = asyncio.create_task(kubectl("get", "deployments", "--watch", "--request-timeout=3s", limit_s=20))
    await eventually(lambda: sim_cluster.store.watcher_count() > 0, what="kubectl's watch")
    await sim_cluster.scale("web", 3)
    await sim_cluster.advance(10)
    result = await watching
    assert result.rc == 0, result.err
    rows = [line.split()[:2] for line in result.out.splitlines()]
    assert rows[0] == ["NAME", "READY"]
    assert rows[1] == ["web", "1/1"]
    assert ["web", "1/3"] in rows[2:]
    assert rows[-1] == ["web", "3/3"]
    await sim_cluster.quiesce()


async def test_kubectl_reads_pod_metrics_through_the_raw_api(sim_cluster: Cluster, kubectl: Kubectl) -> None:
    sim_cluster.attach("default", "web", lambda _t: 1.2)  # 1.2 cores over 3 ready pods
    await sim_cluster.create(deployment_manifest("web", replicas=3))
    await sim_cluster.advance(10)
    raw = await kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
    assert raw.rc == 0, raw.err
    listed = json.loads(raw.out)
    assert listed["kind"] == "PodMetricsList"
    usages = [c["usage"]["cpu"] for item in listed["items"] for c in item["containers"]]
    assert usages == ["400000000n"] * 3

    top = await kubectl("top", "pods", "--no-headers")
    assert top.rc == 0, top.err
    assert [line.split()[1] for line in top.out.splitlines()] == ["400m"] * 3


async def test_kubectl_delete_removes_the_deployment_and_its_pods(sim_cluster: Cluster, kubectl: Kubectl) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    result = await kubectl("delete", "deployment", "web")
    assert result.rc == 0, result.err
    assert 'deployment.apps "web" deleted' in result.out
    assert sim_cluster.list("v1", "Pod", "default") == []


async def test_kubectl_create_commands_send_protobuf_that_the_sim_understands(
    sim_cluster: Cluster, kubectl: Kubectl
) -> None:
    for args, printed in [
        (["create", "namespace", "demo"], "namespace/demo created"),
        (["create", "deployment", "web", "-n", "demo", "--image=nginx:1.27", "--replicas=0", "--port=80"],
         "deployment.apps/web created"),
        (["create", "configmap", "cfg", "-n", "demo", "--from-literal=lead=120"], "configmap/cfg created"),
        (["create", "secret", "generic", "tok", "-n", "demo", "--from-literal=k=v"], "secret/tok created"),
        (["create", "serviceaccount", "aihpa", "-n", "demo"], "serviceaccount/aihpa created"),
        (["autoscale", "deployment", "web", "-n", "demo", "--min=2", "--max=5", "--cpu=80%"],
         "horizontalpodautoscaler.autoscaling/web autoscaled"),
        (["create", "role", "reader", "-n", "demo", "--verb=get", "--resource=pods"],
         "role.rbac.authorization.k8s.io/reader created"),
        (["create", "rolebinding", "reader", "-n", "demo", "--role=reader", "--serviceaccount=demo:aihpa"],
         "rolebinding.rbac.authorization.k8s.io/reader created"),
        (["create", "job", "train", "-n", "demo", "--image=busybox:1"], "job.batch/train created"),
    ]:
        result = await kubectl(*args)
        assert result.rc == 0, result.err
        assert result.out.strip() == printed
    dep = sim_cluster.get("apps/v1", "Deployment", "web", "demo")
    assert dep is not None
    assert dep["spec"]["replicas"] == 0  # an explicit zero survives decoding
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["ports"]) == ("nginx:1.27", [{"containerPort": 80}])
    assert_valid(dep)
    secret = sim_cluster.get("v1", "Secret", "tok", "demo")
    assert secret is not None
    assert secret["data"] == {"k": "dg=="}
    cm = sim_cluster.get("v1", "ConfigMap", "cfg", "demo")
    assert cm is not None
    assert cm["data"] == {"lead": "120"}
    hpa = sim_cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", "demo")
    assert hpa is not None
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    role = sim_cluster.get("rbac.authorization.k8s.io/v1", "Role", "reader", "demo")
    assert role is not None
    assert role["rules"] == [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]
    for api_version, kind, name in [("autoscaling/v2", "HorizontalPodAutoscaler", "web"),
                                    ("rbac.authorization.k8s.io/v1", "RoleBinding", "reader"),
                                    ("batch/v1", "Job", "train"), ("v1", "Secret", "tok"),
                                    ("v1", "ServiceAccount", "aihpa"), ("v1", "Namespace", "demo")]:
        obj = sim_cluster.get(api_version, kind, name, "demo")
        assert obj is not None, kind
        assert_valid(obj)
