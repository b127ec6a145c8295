"""Least privilege and the three certificate modes, read from the rendered objects.

The RBAC tables below are the requests the code sends: the controller (src/aihpa/controller.py, src/aihpa/k8s/,
src/aihpa/metrics/metrics_api.py), the webhook's profile watch (src/aihpa/webhook/profile_configmaps.py) and the
certificate commands (src/aihpa/webhook/kube_certs.py). A new request in the code needs a new row here and in the chart.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.chart.conftest import HOOK, NAMESPACE, Obj, Rendered, container_args
from tests.chart.test_render import parse_cli

Render = Callable[..., Rendered]
Rule = tuple[str, str, frozenset[str], frozenset[str]]


def rule(group: str, resource: str, verbs: str, names: str = "") -> Rule:
    return (group, resource, frozenset(verbs.split()), frozenset(names.split()))


def rules_of(role: Obj) -> set[Rule]:
    out: set[Rule] = set()
    for r in role["rules"]:
        for group in r["apiGroups"]:
            for resource in r["resources"]:
                out.add((group, resource, frozenset(r["verbs"]), frozenset(r.get("resourceNames") or ())))
    assert len(out) == sum(len(r["apiGroups"]) * len(r["resources"]) for r in role["rules"]), "a rule is repeated"
    return out


CONTROLLER_WORKLOAD_RULES = {
    rule("apps", "deployments", "list watch patch"),
    rule("apps", "deployments/scale", "get patch"),
    rule("autoscaling", "horizontalpodautoscalers", "list watch patch"),
    rule("", "events", "create patch"),
    rule("metrics.k8s.io", "pods", "list"),
}
CONTROLLER_OWN_RULES = {
    rule("coordination.k8s.io", "leases", "create"),
    rule("coordination.k8s.io", "leases", "get update", "aihpa-controller"),
    rule("", "configmaps", "create"),
    rule("", "configmaps", "update", "aihpa-profiles-0 aihpa-profiles-1 aihpa-profiles-2 aihpa-profiles-3"),
}
WEBHOOK_RULES = {rule("", "configmaps", "list watch")}
CERTS_SECRET_RULES = {
    rule("", "secrets", "create"),
    rule("", "secrets", "get update", "aihpa-webhook-tls"),
}
CERTS_CONFIG_RULES = {
    rule("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get update", "aihpa-webhook"),
}


def bound_rules(rendered: Rendered, service_account: str) -> dict[tuple[str, str | None], set[Rule]]:
    """Every rule granted to the service account, by (kind of binding, namespace)."""
    grants: dict[tuple[str, str | None], set[Rule]] = {}
    for binding in rendered.of("RoleBinding") + rendered.of("ClusterRoleBinding"):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]):
            continue
        for s in binding["subjects"]:
            assert s == {"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace")
        role = rendered.one(ref["kind"], ref["name"])
        assert role["metadata"].get("namespace") == namespace
        grants.setdefault((binding["kind"], namespace), set()).update(rules_of(role))
    return grants


def test_the_controller_may_do_exactly_what_it_does(render: Render) -> None:
    assert bound_rules(render(), "aihpa-controller") == {
        ("ClusterRoleBinding", None): CONTROLLER_WORKLOAD_RULES,
        ("RoleBinding", NAMESPACE): CONTROLLER_OWN_RULES,
    }


def test_a_controller_for_one_namespace_gets_a_role_there_and_no_metrics_api_with_prometheus(render: Render) -> None:
    rendered = render({"controller": {
        "watchNamespace": "shop", "profileShards": 2,
        "metrics": {"source": "prometheus", "prometheus": {"url": "http://prometheus:9090"}},
    }})
    assert rendered.of("ClusterRole") == rendered.of("ClusterRoleBinding") == []
    four_shards = rule("", "configmaps", "update", " ".join(f"aihpa-profiles-{i}" for i in range(4)))
    two_shards = rule("", "configmaps", "update", "aihpa-profiles-0 aihpa-profiles-1")
    assert bound_rules(rendered, "aihpa-controller") == {
        ("RoleBinding", "shop"): CONTROLLER_WORKLOAD_RULES - {rule("metrics.k8s.io", "pods", "list")},
        ("RoleBinding", NAMESPACE): CONTROLLER_OWN_RULES - {four_shards} | {two_shards},
    }


def test_a_single_controller_without_election_gets_no_lease_access(render: Render) -> None:
    grants = bound_rules(render({"controller": {"replicas": 1, "leaderElection": False}}), "aihpa-controller")
    assert not any(r[0] == "coordination.k8s.io" for r in grants[("RoleBinding", NAMESPACE)])


@pytest.mark.parametrize("mode", ["helm", "self", "cert-manager"])
def test_the_webhook_may_only_watch_configmaps_in_its_namespace(render: Render, mode: str) -> None:
    grants = bound_rules(render({"certs": {"mode": mode}}), "aihpa-webhook")
    assert grants == {("RoleBinding", NAMESPACE): WEBHOOK_RULES}


def test_no_service_account_outside_the_self_mode_hook_may_touch_secrets_or_webhook_configurations(
    render: Render,
) -> None:
    for mode in ("helm", "self", "cert-manager"):
        rendered = render({"certs": {"mode": mode}})
        for role in rendered.of("Role") + rendered.of("ClusterRole"):
            if role["metadata"]["name"] == "aihpa-certs":
                continue
            touched = {r[1] for r in rules_of(role)}
            assert not touched & {"secrets", "mutatingwebhookconfigurations"}, role["metadata"]["name"]


def certificate(pem_b64: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(pem_b64))


def test_helm_mode_issues_a_serving_certificate_for_the_service_signed_by_the_injected_ca(render: Render) -> None:
    rendered = render({"certs": {"mode": "helm", "days": 30}})
    secret = rendered.one("Secret", "aihpa-webhook-tls")
    config = rendered.one("MutatingWebhookConfiguration", "aihpa-webhook")
    ca = certificate(config["webhooks"][0]["clientConfig"]["caBundle"])
    assert secret["data"]["ca.crt"] == config["webhooks"][0]["clientConfig"]["caBundle"]
    serving = certificate(secret["data"]["tls.crt"])
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert "aihpa-webhook.aihpa.svc" in names
    assert ExtendedKeyUsageOID.SERVER_AUTH in serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert serving.signature_hash_algorithm is not None
    key.verify(serving.signature, serving.tbs_certificate_bytes, padding.PKCS1v15(), serving.signature_hash_algorithm)
    lifetime_days = (serving.not_valid_after_utc.timestamp() - time.time()) / 86_400
    assert 29 < lifetime_days <= 30


def test_self_mode_generates_before_and_injects_after_with_hooks_scoped_to_one_secret_and_one_configuration(
    render: Render,
) -> None:
    rendered = render({"certs": {"mode": "self"}})
    assert rendered.of("Secret") == []
    config = rendered.one("MutatingWebhookConfiguration", "aihpa-webhook")
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]  # an upgrade keeps what the hook injected
    generate, inject = rendered.one("Job", "aihpa-certs-generate"), rendered.one("Job", "aihpa-certs-inject")
    assert generate["metadata"]["annotations"][HOOK] == "pre-install,pre-upgrade"
    assert inject["metadata"]["annotations"][HOOK] == "post-install,post-upgrade"
    gen = parse_cli(container_args(generate))
    assert (gen.service, gen.namespace, gen.secret_name, gen.apply) == (
        "aihpa-webhook", NAMESPACE, "aihpa-webhook-tls", True)
    inj = parse_cli(container_args(inject))
    assert (inj.name, str(inj.ca_file)) == ("aihpa-webhook", "/etc/aihpa/tls/ca.crt")
    (tls,) = [v for v in inject["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "aihpa-webhook-tls"
    for job in (generate, inject):
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "aihpa-certs"
    assert bound_rules(rendered, "aihpa-certs") == {
        ("RoleBinding", NAMESPACE): CERTS_SECRET_RULES,
        ("ClusterRoleBinding", None): CERTS_CONFIG_RULES,
    }
    # the hook's RBAC exists before either Job and is gone once they succeed
    for obj in rendered.hooks():
        if obj["kind"] != "Job":
            annotations: dict[str, Any] = obj["metadata"]["annotations"]
            assert set(annotations[HOOK].split(",")) == {"pre-install", "pre-upgrade", "post-install", "post-upgrade"}
            assert int(annotations["helm.sh/hook-weight"]) < 0
            assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]


def test_cert_manager_mode_issues_from_a_chart_made_ca_and_injects_it(render: Render) -> None:
    rendered = render({"certs": {"mode": "cert-manager"}})
    assert rendered.of("Secret") == [] and rendered.hooks() == []
    config = rendered.one("MutatingWebhookConfiguration", "aihpa-webhook")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/aihpa-webhook"
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]
    serving = rendered.one("Certificate", "aihpa-webhook")
    assert serving["spec"]["secretName"] == "aihpa-webhook-tls"
    assert "aihpa-webhook.aihpa.svc" in serving["spec"]["dnsNames"]
    assert serving["spec"]["issuerRef"] == {"kind": "Issuer", "name": "aihpa-webhook-ca"}
    ca_issuer = rendered.one("Issuer", "aihpa-webhook-ca")
    ca_cert = rendered.one("Certificate", "aihpa-webhook-ca")
    assert ca_cert["spec"]["isCA"] is True
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    self_signed = rendered.one("Issuer", "aihpa-webhook-selfsigned")
    assert self_signed["spec"] == {"selfSigned": {}}
    assert ca_cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": self_signed["metadata"]["name"]}


def test_cert_manager_mode_with_an_issuer_makes_no_ca_of_its_own(render: Render) -> None:
    rendered = render({"certs": {"mode": "cert-manager",
                                 "certManager": {"issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}}}})
    assert rendered.of("Issuer") == []
    assert rendered.one("Certificate")["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "corp-ca"}
