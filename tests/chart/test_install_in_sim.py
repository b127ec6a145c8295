"""The rendered chart applied with the real kubectl to the simulated cluster, and its webhook configuration at work.

The sim runs no containers, so the webhook the chart's Service points at is the real `aihpa.webhook` app started here on
127.0.0.1 with the helm-mode certificate from the rendered Secret, and registered as that Service. The API server then
calls it, verifying TLS against the caBundle the chart rendered, for every Deployment the configuration selects.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from aihpa.profiles import InMemoryProfileSource
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import Kubectl, deployment_manifest
from aihpa.webhook import create_app, start_server
from aihpa.webhook.certs import CertificateSource
from aihpa.webhook.settings import WebhookSettings
from tests.chart.conftest import NAMESPACE, RELEASE, Obj, Rendered, helm, split_documents

pytestmark = pytest.mark.slow

Render = Callable[..., Rendered]
APP_NAMESPACE = "shop"
MODEL = "bilstm-chart"

#: Just enough of the cert-manager and Prometheus Operator CRDs for the API server to store their objects.
CRDS = [
    ("cert-manager.io", "Issuer", "issuers"),
    ("cert-manager.io", "Certificate", "certificates"),
    ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
]


#: The sim serves no ValidatingAdmissionPolicy API (test_admission_policy.py evaluates the chart's policy instead).
WITHOUT_POLICY: Obj = {"controller": {"admissionPolicy": {"enabled": False}}}


def crd(group: str, kind: str, plural: str) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


async def apply(kubectl: Kubectl, rendered: Rendered, tmp_path: Path) -> str:
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(rendered.manifest())
    result = await kubectl("apply", "-f", str(manifest))
    assert result.rc == 0, result.err
    return result.out


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="helm-certs"),
        pytest.param({"certs": {"mode": "self"}}, id="self-certs"),
        pytest.param({"certs": {"mode": "cert-manager"}, "serviceMonitor": {"enabled": True}}, id="cert-manager"),
    ],
)
async def test_kubectl_applies_the_rendered_chart_and_reapplies_it_unchanged(
    sim_cluster: Cluster, kubectl: Kubectl, render: Render, tmp_path: Path, values: Obj
) -> None:
    await sim_cluster.ensure_namespace(NAMESPACE)
    for definition in CRDS:
        await sim_cluster.create(crd(*definition))
    rendered = render(values | WITHOUT_POLICY)
    first = await apply(kubectl, rendered, tmp_path)
    for obj in rendered.objects:
        stored = sim_cluster.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                                 obj["metadata"].get("namespace"))
        assert stored is not None, f"{obj['apiVersion']} {obj['kind']} {obj['metadata']['name']} was not stored"
    assert "deployment.apps/aihpa-controller created" in first
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/aihpa-webhook created" in first
    again = await apply(kubectl, rendered, tmp_path)
    for line in again.splitlines():
        # kubectl re-sends a PodDisruptionBudget's selector (patch strategy "replace") on every apply, as with a
        # real API server, so it always reports those as configured
        assert line.endswith(" unchanged") or line.startswith("poddisruptionbudget.policy/"), line


@dataclass
class Webhook:
    runner: web.AppRunner
    port: int


@pytest_asyncio.fixture
async def chart_webhook(sim_cluster: Cluster, kubectl: Kubectl, render: Render, tmp_path: Path) -> AsyncIterator[Obj]:
    """The default (helm-mode) chart applied, and the real webhook serving its Secret as its Service."""
    await sim_cluster.ensure_namespace(NAMESPACE)
    await sim_cluster.ensure_namespace(APP_NAMESPACE)
    rendered = render({"webhook": {"modelVersion": MODEL}} | WITHOUT_POLICY)
    await apply(kubectl, rendered, tmp_path)
    secret = rendered.one("Secret", "aihpa-webhook-tls")
    cert_dir = tmp_path / "tls"
    cert_dir.mkdir()
    for key in ("tls.crt", "tls.key"):
        (cert_dir / key).write_bytes(base64.b64decode(secret["data"][key]))
    certs = CertificateSource.from_directory(cert_dir)
    app = create_app(WebhookSettings(model_version=MODEL), InMemoryProfileSource(), certs=certs)
    runner, port = await start_server(app, host="127.0.0.1", port=0, ssl_context=certs.ssl_context)
    service = rendered.one("Service", "aihpa-webhook")
    sim_cluster.register_service(NAMESPACE, service["metadata"]["name"], "127.0.0.1", port)
    try:
        yield rendered.one("MutatingWebhookConfiguration")
    finally:
        await sim_cluster.admission.close()
        await runner.cleanup()


async def apply_deployment(kubectl: Kubectl, manifest: Obj, tmp_path: Path) -> Obj:
    path = tmp_path / f"{manifest['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = await kubectl("apply", "-f", str(path))
    assert result.rc == 0, result.err
    got = await kubectl("get", "deployment", manifest["metadata"]["name"], "-n", manifest["metadata"]["namespace"],
                        "-o", "json")
    assert got.rc == 0, got.err
    stored: Obj = json.loads(got.out)
    return stored


async def test_the_chart_webhook_configuration_mutates_labeled_deployments_over_verified_tls(
    sim_cluster: Cluster, kubectl: Kubectl, chart_webhook: Obj, tmp_path: Path
) -> None:
    labeled = deployment_manifest("web", namespace=APP_NAMESPACE, labels={"aihpa/enabled": "true"},
                                  annotations={"aihpa/max-replicas": "12"})
    stored = await apply_deployment(kubectl, labeled, tmp_path)
    annotations: dict[str, Any] = stored["metadata"]["annotations"]
    assert annotations["aihpa/managed"] == "true"
    assert annotations["aihpa/model-version"] == MODEL
    assert annotations["aihpa/max-replicas"] == "12"
    assert annotations["aihpa/min-replicas"] == "1"  # the default, made explicit

    plain = await apply_deployment(kubectl, deployment_manifest("batch", namespace=APP_NAMESPACE), tmp_path)
    assert not any(k.startswith("aihpa/") for k in plain["metadata"].get("annotations") or {})


async def test_the_release_namespace_is_outside_the_webhook(
    sim_cluster: Cluster, kubectl: Kubectl, chart_webhook: Obj, tmp_path: Path
) -> None:
    own = deployment_manifest("tool", namespace=NAMESPACE, labels={"aihpa/enabled": "true"})
    stored = await apply_deployment(kubectl, own, tmp_path)
    assert "aihpa/managed" not in (stored["metadata"].get("annotations") or {})


async def test_a_wrong_ca_bundle_fails_open_as_the_chart_asks(
    sim_cluster: Cluster, kubectl: Kubectl, chart_webhook: Obj, render: Render, tmp_path: Path
) -> None:
    other_ca = render().one("MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
    config = await kubectl("get", "mutatingwebhookconfiguration", "aihpa-webhook", "-o", "json")
    live: Obj = json.loads(config.out)
    live["webhooks"][0]["clientConfig"]["caBundle"] = other_ca
    path = tmp_path / "config.json"
    path.write_text(json.dumps(live))
    replaced = await kubectl("replace", "-f", str(path))
    assert replaced.rc == 0, replaced.err
    labeled = deployment_manifest("web", namespace=APP_NAMESPACE, labels={"aihpa/enabled": "true"})
    stored = await apply_deployment(kubectl, labeled, tmp_path)
    assert "aihpa/managed" not in (stored["metadata"].get("annotations") or {})


async def test_helm_mode_keeps_the_certificate_of_an_installed_release_on_upgrade(
    sim_cluster: Cluster, sim_kubeconfig: Path, chart: Any, render: Render
) -> None:
    """An upgrade renders against the cluster: `lookup` finds the Secret, so the CA and caBundle stay the same."""
    await sim_cluster.ensure_namespace(NAMESPACE)
    installed = render()
    await sim_cluster.create(installed.one("Secret", "aihpa-webhook-tls"))

    def render_upgrade() -> Rendered:
        with helm.Config(kubeconfig_path=sim_kubeconfig, namespace=NAMESPACE) as config:
            return split_documents(config.render(chart, {}, name=RELEASE, namespace=NAMESPACE, is_upgrade=True,
                                                 revision=2))

    # the engine blocks while it calls the API server, which serves on this loop: render on a thread
    upgraded = await asyncio.to_thread(render_upgrade)
    assert upgraded.one("Secret", "aihpa-webhook-tls")["data"] == installed.one("Secret", "aihpa-webhook-tls")["data"]
    bundle = upgraded.one("MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
    assert bundle == installed.one("Secret", "aihpa-webhook-tls")["data"]["ca.crt"]
    fresh = render()
    assert fresh.one("Secret", "aihpa-webhook-tls")["data"]["ca.crt"] != bundle  # without the lookup: a new CA
