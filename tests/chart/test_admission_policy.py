"""The ValidatingAdmissionPolicy that holds the controller to its aihpa/* annotations and the replica count.

The policy is read from the chart as the Helm engine renders it, validated against the official schemas, and its CEL
(matchConditions, variables, validations) is evaluated with cel-python on Deployment updates as the API server would
present them: the stored object as `oldObject`, the patched one as `object`, with the fields the API server changes
on every update (managedFields, resourceVersion, generation) changed too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
import pytest
from celpy import celtypes

from tests.chart.conftest import NAMESPACE, SUPPORTED_VERSIONS, Obj, Rendered, validate_strictly

Render = Callable[..., Rendered]
Change = Callable[[Obj], None]

CONTROLLER = f"system:serviceaccount:{NAMESPACE}:aihpa-controller"
#: The first Kubernetes version with admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy.
GA = "1.30.0"
NEWEST = SUPPORTED_VERSIONS[-1]
POLICY_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


@dataclass(frozen=True)
class Verdict:
    matched: bool
    allowed: bool
    message: str | None = None


class CompiledPolicy:
    """A ValidatingAdmissionPolicy's CEL, evaluated as the API server does for one request (no params)."""

    def __init__(self, policy: Obj) -> None:
        self._env = celpy.Environment()
        spec = policy["spec"]
        self.conditions = [self._compile(c["expression"]) for c in spec.get("matchConditions", [])]
        self.variables = [(v["name"], self._compile(v["expression"])) for v in spec.get("variables", [])]
        self.validations = [(self._compile(v["expression"]), v["message"]) for v in spec["validations"]]

    def _compile(self, expression: str) -> Any:
        return self._env.program(self._env.compile(expression))

    def review(self, *, old: Obj, new: Obj, username: str) -> Verdict:
        request = {"operation": "UPDATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                   "userInfo": {"username": username}}
        activation: dict[str, Any] = {
            "object": celpy.json_to_cel(new),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel(request),
        }
        if not all(bool(condition.evaluate(activation)) for condition in self.conditions):
            return Verdict(matched=False, allowed=True)
        variables = celtypes.MapType()
        activation["variables"] = variables
        for name, program in self.variables:
            variables[celtypes.StringType(name)] = program.evaluate(activation)
        for program, message in self.validations:
            result = program.evaluate(activation)
            assert isinstance(result, celtypes.BoolType), f"{message}: evaluated to {result!r}"
            if not result:
                return Verdict(matched=True, allowed=False, message=message)
        return Verdict(matched=True, allowed=True)


def stored_deployment() -> Obj:
    """A labeled Deployment as the API server stores it: defaults, metadata it keeps, status."""
    labels = {"app": "web", "aihpa/enabled": "true"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "0b6f3c1e-9d1a-4c55-8f0e-3e0c2f9b7a10",
            "resourceVersion": "4711",
            "generation": 3,
            "creationTimestamp": "2026-11-01T08:00:00Z",
            "labels": labels,
            "annotations": {
                "aihpa/mode": "predictive",
                "aihpa/status": '{"replicas":4}',
                "deployment.kubernetes.io/revision": "2",
            },
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                               "time": "2026-11-01T08:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {}}],
        },
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/web:1.4.2",
                                         "resources": {"requests": {"cpu": "500m"}}}],
                         "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {"observedGeneration": 3, "replicas": 4, "readyReplicas": 4, "availableReplicas": 4},
    }


def as_the_api_server_stores_it(change: Change) -> tuple[Obj, Obj]:
    """(oldObject, object) for an update that makes `change`, with the bookkeeping every update brings."""
    old = stored_deployment()
    new = copy.deepcopy(old)
    change(new)
    new["metadata"]["resourceVersion"] = "4712"
    new["metadata"]["managedFields"] = [*old["metadata"]["managedFields"],
                                        {"manager": "aihpa", "operation": "Update", "apiVersion": "apps/v1",
                                         "time": "2026-11-24T13:50:00Z", "fieldsType": "FieldsV1", "fieldsV1": {}}]
    if new["spec"] != old["spec"]:
        new["metadata"]["generation"] = old["metadata"]["generation"] + 1
    return old, new


def set_annotation(key: str, value: str) -> Change:
    return lambda d: d["metadata"].setdefault("annotations", {}).__setitem__(key, value)


def drop_annotation(key: str) -> Change:
    return lambda d: d["metadata"]["annotations"].pop(key)


def set_replicas(n: int) -> Change:
    return lambda d: d["spec"].__setitem__("replicas", n)


def both(*changes: Change) -> Change:
    def apply(d: Obj) -> None:
        for change in changes:
            change(d)

    return apply


def set_image(d: Obj) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/evil:latest"


def drop_all_annotations(d: Obj) -> None:
    del d["metadata"]["annotations"]


ALLOWED: dict[str, Change] = {
    "aihpa/status changed": set_annotation("aihpa/status", '{"replicas":7,"reason":"forecast"}'),
    "an aihpa annotation added": set_annotation("aihpa/requested-replicas", "7"),
    "an aihpa annotation removed": drop_annotation("aihpa/mode"),
    "replicas changed": set_replicas(7),
    "replicas and aihpa/status changed": both(set_replicas(2), set_annotation("aihpa/status", '{"replicas":2}')),
    "nothing changed (a no-op patch)": lambda d: None,
}

FORBIDDEN: dict[str, tuple[Change, str]] = {
    "image changed": (set_image, "spec.replicas"),
    "replicas and image changed": (both(set_replicas(7), set_image), "spec.replicas"),
    "pod template gets an aihpa annotation": (
        lambda d: d["spec"]["template"]["metadata"].__setitem__("annotations", {"aihpa/status": "x"}),
        "spec.replicas",
    ),
    "spec field added (paused)": (lambda d: d["spec"].__setitem__("paused", True), "spec.replicas"),
    "spec field removed (strategy)": (lambda d: d["spec"].pop("strategy"), "spec.replicas"),
    "a rollout restart (annotation added)": (
        set_annotation("kubectl.kubernetes.io/restartedAt", "2026-11-24T13:50:00Z"), "aihpa/* annotations"
    ),
    "a non-aihpa annotation changed": (set_annotation("deployment.kubernetes.io/revision", "9"), "aihpa/* annotations"),
    "a non-aihpa annotation removed": (drop_annotation("deployment.kubernetes.io/revision"), "aihpa/* annotations"),
    "every annotation removed": (drop_all_annotations, "aihpa/* annotations"),
    "a label changed": (lambda d: d["metadata"]["labels"].__setitem__("aihpa/enabled", "false"), "labels"),
    "a label added": (lambda d: d["metadata"]["labels"].__setitem__("team", "x"), "labels"),
    "a finalizer added": (lambda d: d["metadata"].__setitem__("finalizers", ["example.com/hold"]), "finalizers"),
    "an owner added": (
        lambda d: d["metadata"].__setitem__("ownerReferences", [{"apiVersion": "v1", "kind": "ConfigMap",
                                                                  "name": "x", "uid": "1"}]),
        "owners",
    ),
    "status changed": (lambda d: d["status"].__setitem__("readyReplicas", 0), "aihpa/* annotations and spec.replicas"),
}


@pytest.fixture(scope="module")
def rendered(render: Render) -> Rendered:
    return render(kube_version=NEWEST)


@pytest.fixture(scope="module")
def policy(rendered: Rendered) -> CompiledPolicy:
    return CompiledPolicy(rendered.one("ValidatingAdmissionPolicy"))


@pytest.mark.parametrize("version", sorted({GA, NEWEST}))
def test_the_policy_and_its_binding_are_rendered_from_1_30_and_valid(render: Render, version: str) -> None:
    rendered = render(kube_version=version)
    policy = rendered.one("ValidatingAdmissionPolicy", "aihpa-controller")
    binding = rendered.one("ValidatingAdmissionPolicyBinding", "aihpa-controller")
    for obj in (policy, binding):
        assert obj["apiVersion"] == "admissionregistration.k8s.io/v1"
        validate_strictly(obj, version)
    assert binding["spec"] == {"policyName": "aihpa-controller", "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"


@pytest.mark.parametrize("version", ["1.27.0", "1.29.0"])
def test_clusters_before_1_30_get_no_policy(render: Render, version: str) -> None:
    assert {o["kind"] for o in render(kube_version=version).objects} & POLICY_KINDS == set()


def test_the_policy_can_be_turned_off(render: Render) -> None:
    off = render({"controller": {"admissionPolicy": {"enabled": False}}}, kube_version=NEWEST)
    assert {o["kind"] for o in off.objects} & POLICY_KINDS == set()


def test_only_updates_of_deployments_themselves_are_matched_so_the_scale_subresource_stays_free(
    rendered: Rendered,
) -> None:
    rules = rendered.one("ValidatingAdmissionPolicy")["spec"]["matchConstraints"]["resourceRules"]
    # "deployments" does not match "deployments/scale": a Scale carries nothing but the replica count
    assert rules == [{"apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["deployments"],
                      "operations": ["UPDATE"]}]


def test_the_match_condition_names_the_controllers_service_account(rendered: Rendered) -> None:
    account = rendered.one("ServiceAccount", "aihpa-controller")
    subject = f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    assert subject == CONTROLLER
    conditions = rendered.one("ValidatingAdmissionPolicy")["spec"]["matchConditions"]
    assert [c["expression"] for c in conditions] == [f"request.userInfo.username == '{CONTROLLER}'"]


@pytest.mark.parametrize("change", [pytest.param(c, id=name) for name, c in ALLOWED.items()])
def test_the_controller_may_change_aihpa_annotations_and_replicas(policy: CompiledPolicy, change: Change) -> None:
    old, new = as_the_api_server_stores_it(change)
    assert policy.review(old=old, new=new, username=CONTROLLER) == Verdict(matched=True, allowed=True)


def test_the_controller_may_annotate_a_deployment_that_had_no_annotations(policy: CompiledPolicy) -> None:
    old = stored_deployment()
    del old["metadata"]["annotations"]
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"aihpa/status": '{"replicas":4}'}
    assert policy.review(old=old, new=new, username=CONTROLLER).allowed


@pytest.mark.parametrize(
    ("change", "message"), [pytest.param(c, m, id=name) for name, (c, m) in FORBIDDEN.items()]
)
def test_the_controller_may_change_nothing_else(policy: CompiledPolicy, change: Change, message: str) -> None:
    old, new = as_the_api_server_stores_it(change)
    verdict = policy.review(old=old, new=new, username=CONTROLLER)
    assert verdict.matched and not verdict.allowed
    assert verdict.message is not None and message in verdict.message


@pytest.mark.parametrize(
    "username",
    [
        "kubernetes-admin",
        f"system:serviceaccount:{NAMESPACE}:aihpa-webhook",
        f"system:serviceaccount:{NAMESPACE}:aihpa-controller-other",
        "system:serviceaccount:elsewhere:aihpa-controller",
    ],
)
def test_other_users_requests_are_not_matched(policy: CompiledPolicy, username: str) -> None:
    old, new = as_the_api_server_stores_it(set_image)
    assert policy.review(old=old, new=new, username=username) == Verdict(matched=False, allowed=True)


def test_a_release_elsewhere_matches_its_own_controller(render: Render) -> None:
    policy = CompiledPolicy(render(namespace="autoscaling", kube_version=NEWEST).one("ValidatingAdmissionPolicy"))
    old, new = as_the_api_server_stores_it(set_image)
    assert not policy.review(old=old, new=new, username="system:serviceaccount:autoscaling:aihpa-controller").allowed
    assert policy.review(old=old, new=new, username=CONTROLLER).matched is False
