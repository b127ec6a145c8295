"""The chart as the Helm engine renders and lints it: valid objects for every supported Kubernetes version, a schema
that rejects wrong values, hardened pods, and command lines that the aihpa CLI itself accepts."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from aihpa.cli import build_parser
from tests.chart.conftest import (
    CHART,
    CUSTOM_KINDS,
    NAMESPACE,
    ROOT,
    SUPPORTED_VERSIONS,
    Obj,
    Rendered,
    container_args,
    helm,
    validate_strictly,
)

Render = Callable[..., Rendered]

#: Value sets the tests render: each cert mode, and combinations that switch templates on and off.
SCENARIOS: dict[str, Obj] = {
    "defaults": {},
    "self-certs": {"certs": {"mode": "self"}},
    "cert-manager": {"certs": {"mode": "cert-manager"}, "serviceMonitor": {"enabled": True}},
    "cert-manager-with-an-issuer": {
        "certs": {"mode": "cert-manager", "certManager": {"issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}}},
    },
    "prometheus-one-namespace-with-history-and-model": {
        "controller": {
            "watchNamespace": "shop",
            "dryRun": True,
            "metrics": {"source": "prometheus", "prometheus": {"url": "http://prometheus.monitoring:9090"}},
            "history": {"enabled": True, "volume": {"persistentVolumeClaim": {"claimName": "aihpa-history"}}},
            "model": {"path": "/models", "volume": {"persistentVolumeClaim": {"claimName": "aihpa-models"}}},
        },
        "imagePullSecrets": [{"name": "regcred"}],
        "commonLabels": {"team": "platform"},
    },
    "model-lifecycle": {
        "controller": {"model": {"lifecycle": {"enabled": True, "retrainEvery": 3600,
                                               "volume": {"persistentVolumeClaim": {"claimName": "aihpa-models"}}}}},
    },
    "webhook-network-policy-and-limits": {
        "webhook": {
            "headerTimeoutSeconds": 3, "bodyTimeoutSeconds": 2, "maxConnections": 64,
            "networkPolicy": {"enabled": True, "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                              "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
        },
    },
    "single-controller-without-webhook": {
        "controller": {"replicas": 1, "leaderElection": False},
        "webhook": {"enabled": False},
    },
}

ALL_VALUES = [pytest.param(values, id=name) for name, values in SCENARIOS.items()]


def kinds(rendered: Rendered) -> set[str]:
    return {o["kind"] for o in rendered.objects}


def parse_cli(args: list[str]) -> Any:
    """Parse a container's arguments with the aihpa CLI's own parser, as the entrypoint would."""
    expanded = [a.replace("$(POD_NAME)", "aihpa-controller-0") for a in args]
    return build_parser().parse_args(expanded)


def test_app_version_is_the_package_version() -> None:
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == package


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("values", ALL_VALUES)
def test_the_chart_lints_clean_in_strict_mode(values: Obj, version: str) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{version}")
    assert report["errors"] == []
    # severity 1 is information ("icon is recommended"); warnings (2) and errors (3) fail
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("values", ALL_VALUES)
def test_every_rendered_object_is_valid_for_the_supported_kubernetes_versions(
    render: Render, values: Obj, version: str
) -> None:
    rendered = render(values, kube_version=version)
    assert rendered.objects
    for obj in rendered.objects:
        if f"{obj['apiVersion']}/{obj['kind']}" in CUSTOM_KINDS:
            assert obj["metadata"]["name"] and obj["spec"]
            continue
        validate_strictly(obj, version)


@pytest.mark.parametrize("values", ALL_VALUES)
def test_every_namespaced_object_lands_in_the_release_namespace_or_the_watched_one(render: Render, values: Obj) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                      "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    watched = values.get("controller", {}).get("watchNamespace")
    for obj in render(values, namespace="autoscaling").objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None
        else:
            assert namespace in {"autoscaling", watched}, obj["metadata"]


def test_the_defaults_install_a_controller_and_a_webhook_with_helm_made_certificates(render: Render) -> None:
    rendered = render()
    assert {d["metadata"]["name"] for d in rendered.of("Deployment")} == {"aihpa-controller", "aihpa-webhook"}
    assert {p["metadata"]["name"] for p in rendered.of("PodDisruptionBudget")} == {"aihpa-controller", "aihpa-webhook"}
    assert rendered.hooks() == []
    assert rendered.of("ServiceMonitor") == []
    assert rendered.one("Secret", "aihpa-webhook-tls")["type"] == "kubernetes.io/tls"
    assert "kubectl label deployment/<name> aihpa/enabled=true" in rendered.notes


@pytest.mark.parametrize("values", ALL_VALUES)
def test_pods_are_hardened_spread_probed_and_bounded(render: Render, values: Obj) -> None:
    rendered = render(values)
    for obj in rendered.of("Deployment") + rendered.of("Job"):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
            assert c["command"] == ["aihpa"]
            assert c["image"] == "aihpa:0.1.0"
        if obj["kind"] == "Deployment":
            component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == obj["spec"]["selector"]["matchLabels"]
            assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
            (c,) = pod["containers"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            if obj["spec"]["replicas"] > 1:
                pdb = rendered.one("PodDisruptionBudget", obj["metadata"]["name"])
                assert pdb["spec"]["selector"]["matchLabels"] == obj["spec"]["selector"]["matchLabels"]
                assert component in {"controller", "webhook"}


def test_both_components_run_two_replicas_and_the_controllers_elect_a_leader_by_pod_name(render: Render) -> None:
    rendered = render()
    controller = rendered.one("Deployment", "aihpa-controller")
    assert controller["spec"]["replicas"] == rendered.one("Deployment", "aihpa-webhook")["spec"]["replicas"] == 2
    args = parse_cli(container_args(controller))
    assert args.no_leader_election is False
    assert args.identity == "aihpa-controller-0"
    (env,) = [e for e in controller["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "POD_NAME"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_controller_command_line_is_accepted_by_the_cli_and_carries_the_values(render: Render) -> None:
    values = SCENARIOS["prometheus-one-namespace-with-history-and-model"]
    deployment = render(values).one("Deployment", "aihpa-controller")
    args = parse_cli(container_args(deployment))
    assert args.command == "controller"
    assert args.namespace == NAMESPACE
    assert args.watch_namespace == "shop"
    assert args.metrics == "prometheus"
    assert args.prometheus_url == "http://prometheus.monitoring:9090"
    assert args.model == "/models"
    assert args.history_file == "/var/lib/aihpa/history.json"
    assert args.dry_run is True
    assert (args.sync_period, args.default_saturation_risk, args.profile_shards, args.log_format) == (
        15.0, 0.01, 4, "json")
    assert (args.default_min_replicas, args.default_max_replicas) == (1, 100)
    # no stabilization flag: each mode keeps its own (0 predictive, 300 reactive)
    assert (args.default_target_utilization, args.default_scale_down_stabilization) == (0.7, None)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"tmp": "/tmp", "history": "/var/lib/aihpa", "model": "/models"}


def test_the_webhook_command_line_is_accepted_by_the_cli_and_serves_the_mounted_secret(render: Render) -> None:
    deployment = render({"webhook": {"modelVersion": "bilstm-7"}, "defaults": {"mode": "dry-run"}}).one(
        "Deployment", "aihpa-webhook")
    args = parse_cli(container_args(deployment))
    assert args.command == "webhook"
    assert args.port == 8443
    assert str(args.cert_dir) == "/etc/aihpa/tls"
    assert args.profiles_configmaps == NAMESPACE
    assert args.model_version == "bilstm-7"
    assert args.default_mode == "dry-run"
    assert args.answer_within == 1.5  # within the default timeoutSeconds: 2
    quick = render({"webhook": {"timeoutSeconds": 1}}).one("Deployment", "aihpa-webhook")
    assert parse_cli(container_args(quick)).answer_within < 1
    pod = deployment["spec"]["template"]["spec"]
    (tls,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "aihpa-webhook-tls"
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_the_webhook_configuration_mirrors_the_plain_manifests(render: Render) -> None:
    shipped = yaml.safe_load((ROOT / "webhooks" / "mutatingwebhookconfiguration.yaml").read_text())
    rendered = render().one("MutatingWebhookConfiguration", "aihpa-webhook")
    (want,) = shipped["webhooks"]
    (got,) = rendered["webhooks"]
    for key in want:
        if key != "clientConfig":
            assert got[key] == want[key], key
    assert got["clientConfig"]["service"] == want["clientConfig"]["service"]
    assert got["clientConfig"]["caBundle"]
    service = render().one("Service", "aihpa-webhook")
    shipped_service = yaml.safe_load((ROOT / "webhooks" / "service.yaml").read_text())
    assert service["spec"]["ports"][0]["port"] == shipped_service["spec"]["ports"][0]["port"] == 443


def test_a_release_elsewhere_excludes_its_own_namespace_from_the_webhook(render: Render) -> None:
    config = render({"webhook": {"excludeNamespaces": ["kube-system", "infra"]}}, namespace="autoscaling").one(
        "MutatingWebhookConfiguration")
    (expr,) = config["webhooks"][0]["namespaceSelector"]["matchExpressions"]
    assert expr["values"] == ["kube-system", "infra", "autoscaling"]
    assert config["webhooks"][0]["clientConfig"]["service"]["namespace"] == "autoscaling"


def test_the_service_monitor_scrapes_both_components_when_enabled(render: Render) -> None:
    monitor = render({"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}}).one(
        "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [
        ("http-metrics", "/metrics"), ("https", "/metrics")]


def test_webhook_off_renders_no_webhook_objects(render: Render) -> None:
    rendered = render(SCENARIOS["single-controller-without-webhook"])
    assert [o["metadata"]["name"] for o in rendered.objects if "webhook" in o["metadata"]["name"]] == []
    assert rendered.of("PodDisruptionBudget") == []
    assert "--no-leader-election" in container_args(rendered.one("Deployment"))


BAD_VALUES = {
    "replicas as text": {"controller": {"replicas": "two"}},
    "zero replicas": {"webhook": {"replicas": 0}},
    "unknown cert mode": {"certs": {"mode": "vault"}},
    "enabled as text": {"webhook": {"enabled": "yes"}},
    "risk of one": {"controller": {"risk": 1}},
    "utilization above one": {"defaults": {"targetUtilization": 1.5}},
    "unknown metrics source": {"controller": {"metrics": {"source": "datadog"}}},
    "prometheus url without scheme": {"controller": {"metrics": {"prometheus": {"url": "prometheus:9090"}}}},
    "a misspelt key": {"controler": {"replicas": 2}},
    "failure policy lowercase": {"webhook": {"failurePolicy": "ignore"}},
    "timeout above the API server's 30 s": {"webhook": {"timeoutSeconds": 31}},
    "resources as a list": {"controller": {"resources": ["cpu"]}},
    "port out of range": {"controller": {"port": 70000}},
    "duration without unit": {"serviceMonitor": {"interval": "30"}},
    "args not strings": {"webhook": {"extraArgs": [1]}},
}


@pytest.mark.parametrize("values", [pytest.param(v, id=k) for k, v in BAD_VALUES.items()])
def test_the_schema_rejects_wrong_values(chart: Any, values: Obj) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError, match="schema"):
        chart.render(values, name="aihpa", namespace=NAMESPACE)


def test_the_schema_accepts_every_scenario(chart: Any) -> None:
    for values in SCENARIOS.values():
        chart.validate_schema(values)


def test_the_model_life_cycle_gets_a_writable_models_directory(render: Render) -> None:
    deployment = render(SCENARIOS["model-lifecycle"]).one("Deployment", "aihpa-controller")
    args = parse_cli(container_args(deployment))
    assert args.models_dir == "/var/lib/aihpa-models" and args.retrain_every == 3600.0
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/var/lib/aihpa-models" and not mounts["models"].get("readOnly")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "aihpa-models"}
