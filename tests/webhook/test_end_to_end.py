"""The webhook deployed in the simulated cluster: the API server calls it over verified TLS, as a real one would.

Each test runs the real webhook app on 127.0.0.1 with certificates generated for it, registers it as the Service
`aihpa/aihpa-webhook`, creates the shipped MutatingWebhookConfiguration and injects the CA bundle through the API,
and reads profiles from an `aihpa-profiles-0` ConfigMap through `ConfigMapProfileSource`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml
from aiohttp import web

from aihpa.clock import VirtualClock
from aihpa.k8s import KubeClient, WatchSettings
from aihpa.profiles import ReplicaProfile, configmaps_for
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import Kubectl, deployment_manifest
from aihpa.webhook import create_app, start_server
from aihpa.webhook.certs import CertificateAuthority, CertificateSource, generate, issue_serving_cert, write_files
from aihpa.webhook.kube_certs import inject_ca_bundle_live
from aihpa.webhook.profile_configmaps import ConfigMapProfileSource
from aihpa.webhook.settings import WebhookSettings
from tests.webhook.conftest import WEBHOOKS, validate_deployment

SERVICE, OWN_NAMESPACE, APP_NAMESPACE = "aihpa-webhook", "aihpa", "shop"
CONFIG_NAME = "aihpa-webhook"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{APP_NAMESPACE}/deployments"
CONFIGMAPS = f"/api/v1/namespaces/{OWN_NAMESPACE}/configmaps"
CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
FAST = WatchSettings(timeout_seconds=30, inactivity_timeout=10.0, backoff=(0.01,))
MODEL = "bilstm-e2e"
LIMIT_S = 10.0
ENABLED = {"aihpa/enabled": "true"}
POLICY_KEYS = (
    "aihpa/min-replicas",
    "aihpa/max-replicas",
    "aihpa/target-utilization",
    "aihpa/mode",
    "aihpa/scale-down-stabilization",
    "aihpa/saturation-risk",
)


@dataclass
class Deployed:
    """The webhook as deployed: its server, certificates, profile watch, and a client on the cluster."""

    cluster: Cluster
    kube: KubeClient
    certs: CertificateSource
    cert_dir: Path
    ca: CertificateAuthority
    profiles: ConfigMapProfileSource
    runner: web.AppRunner | None
    port: int
    watch: asyncio.Task[None] = field(repr=False)

    async def stop(self) -> None:
        """Take the webhook down (connections refused from now on); safe to call twice."""
        await self.cluster.admission.close()  # drop the API server's keep-alive connections to it first
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = await self.kube.request("POST", DEPLOYMENTS, body=manifest)
        return stored


def flat_profile(*, name: str, replicas: int, generated_at: float, app: str | None = None) -> ReplicaProfile:
    return ReplicaProfile(
        namespace=APP_NAMESPACE,
        name=name,
        app=app,
        replicas=(replicas,) * 96,
        model_version=MODEL,
        generated_at=generated_at,
    )


def shipped_configuration() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((WEBHOOKS / "mutatingwebhookconfiguration.yaml").read_text())
    return config


@pytest_asyncio.fixture
async def deployed(
    sim_cluster: Cluster, sim_clock: VirtualClock, kube: KubeClient, tmp_path: Path
) -> AsyncIterator[Deployed]:
    await sim_cluster.ensure_namespace(OWN_NAMESPACE)
    await sim_cluster.ensure_namespace(APP_NAMESPACE)
    # What the controller publishes: one shard with the profile of shop/web.
    published = flat_profile(name="web", app="web", replicas=6, generated_at=sim_clock.now())
    for manifest in configmaps_for([published], namespace=OWN_NAMESPACE, shards=1):
        await kube.request("POST", CONFIGMAPS, body=manifest)

    # The serving certificate is real and checked against the wall clock; the admission reads the cluster's clock.
    ca, serving = generate(service=SERVICE, namespace=OWN_NAMESPACE, now=time.time())
    cert_dir = tmp_path / "tls"
    write_files(cert_dir, serving, ca=ca)
    certs = CertificateSource.from_directory(cert_dir)
    profiles = ConfigMapProfileSource(kube, namespace=OWN_NAMESPACE, settings=FAST)
    watch = asyncio.create_task(profiles.run())
    app = create_app(WebhookSettings(model_version=MODEL), profiles, certs=certs, clock=sim_clock)
    runner, port = await start_server(app, host="127.0.0.1", port=0, ssl_context=certs.ssl_context)
    sim_cluster.register_service(OWN_NAMESPACE, SERVICE, "127.0.0.1", port)
    deployed = Deployed(sim_cluster, kube, certs, cert_dir, ca, profiles, runner, port, watch)
    try:
        await kube.request("POST", CONFIGS, body=shipped_configuration())  # caBundle "" as shipped
        await inject_ca_bundle_live(kube, name=CONFIG_NAME, ca_pem=ca.cert_pem)
        async with asyncio.timeout(LIMIT_S):
            await profiles.wait_until(lambda s: s.by_workload(APP_NAMESPACE, "web") is not None)
            # The list is in; let its watch request reach the server too, so no handler of ours starts mid-test.
            # The server exposes a count of requests in flight, not an event: yield turns until it shows the watch.
            while sim_cluster.in_flight < 1:  # noqa: ASYNC110
                await asyncio.sleep(0)
        yield deployed
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await sim_cluster.quiesce()
        await deployed.stop()


async def test_the_ca_bundle_is_injected_into_the_live_configuration(deployed: Deployed) -> None:
    stored = await deployed.kube.get(f"{CONFIGS}/{CONFIG_NAME}")
    (hook,) = stored["webhooks"]
    assert hook["clientConfig"]["caBundle"]
    assert hook["failurePolicy"] == "Ignore"
    version = stored["metadata"]["resourceVersion"]
    # Injecting the same CA again writes nothing.
    again = await inject_ca_bundle_live(deployed.kube, name=CONFIG_NAME, ca_pem=deployed.ca.cert_pem)
    assert again["metadata"]["resourceVersion"] == version


async def test_a_labeled_deployment_is_stored_mutated_with_the_published_forecast(deployed: Deployed) -> None:
    created = await deployed.create(deployment_manifest("web", namespace=APP_NAMESPACE, replicas=2, labels=ENABLED))
    stored = deployed.cluster.get("apps/v1", "Deployment", "web", APP_NAMESPACE)
    assert stored is not None
    for obj in (created, stored):
        annotations = obj["metadata"]["annotations"]
        assert {k: annotations[k] for k in POLICY_KEYS} == {
            "aihpa/min-replicas": "1",
            "aihpa/max-replicas": "100",
            "aihpa/target-utilization": "0.7",
            "aihpa/mode": "predictive",
            "aihpa/scale-down-stabilization": "0",
            "aihpa/saturation-risk": "0.01",
        }
        assert annotations["aihpa/managed"] == "true"
        assert annotations["aihpa/model-version"] == MODEL
        assert annotations["aihpa/requested-replicas"] == "2"
        forecast = json.loads(annotations["aihpa/initial-forecast"])
        assert forecast["profile"] == "shop/web" and forecast["matchedBy"] == "name" and forecast["replicas"] == 6
        assert obj["spec"]["replicas"] == 6
    validate_deployment(created)


async def test_a_profile_published_later_reaches_the_next_admission(
    deployed: Deployed, sim_clock: VirtualClock
) -> None:
    later = [
        flat_profile(name="web", app="web", replicas=6, generated_at=sim_clock.now()),
        flat_profile(name="checkout-v1", app="checkout", replicas=4, generated_at=sim_clock.now()),
    ]
    (manifest,) = configmaps_for(later, namespace=OWN_NAMESPACE, shards=1)
    current = await deployed.kube.get(f"{CONFIGMAPS}/aihpa-profiles-0")
    manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await deployed.kube.request("PUT", f"{CONFIGMAPS}/aihpa-profiles-0", body=manifest)
    async with asyncio.timeout(LIMIT_S):
        await deployed.profiles.wait_until(lambda s: s.by_app(APP_NAMESPACE, "checkout") is not None)
    # A new name, found through its app label.
    labels = {**ENABLED, "app.kubernetes.io/name": "checkout"}
    created = await deployed.create(deployment_manifest("checkout-v2", namespace=APP_NAMESPACE, labels=labels))
    assert created["spec"]["replicas"] == 4
    assert json.loads(created["metadata"]["annotations"]["aihpa/initial-forecast"])["matchedBy"] == (
        "app.kubernetes.io/name"
    )
    validate_deployment(created)


async def test_an_unlabeled_deployment_is_left_untouched(deployed: Deployed) -> None:
    manifest = deployment_manifest("web", namespace=APP_NAMESPACE, replicas=2)
    calls = deployed.cluster.admission.calls
    created = await deployed.create(manifest)
    assert deployed.cluster.admission.calls == calls  # the objectSelector kept it from the webhook altogether
    assert "annotations" not in created["metadata"]
    assert created["spec"]["replicas"] == 2
    assert created["metadata"]["labels"] == manifest["metadata"]["labels"]


async def test_kubectl_apply_prints_the_warning_for_an_invalid_annotation(
    deployed: Deployed, kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = deployment_manifest(
        "web", namespace=APP_NAMESPACE, replicas=2, labels=ENABLED, annotations={"aihpa/mode": "turbo"}
    )
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = await kubectl("apply", "-f", str(path))
    assert result.rc == 0, result.err
    assert "deployment.apps/web created" in result.out
    assert (
        "Warning: aihpa: aihpa/mode='turbo' must be one of predictive, reactive, dry-run; using default predictive"
        in result.err
    ), result.err
    stored = deployed.cluster.get("apps/v1", "Deployment", "web", APP_NAMESPACE)
    assert stored is not None
    assert stored["metadata"]["annotations"]["aihpa/mode"] == "predictive"
    assert stored["spec"]["replicas"] == 6
    validate_deployment(stored)


async def test_a_webhook_that_is_down_lets_deployments_through_unchanged(deployed: Deployed) -> None:
    await deployed.stop()
    manifest = deployment_manifest("web", namespace=APP_NAMESPACE, replicas=2, labels=ENABLED)
    calls = deployed.cluster.admission.calls
    created = await deployed.create(manifest)
    assert deployed.cluster.admission.calls == calls + 1  # it was called, failed, and failurePolicy Ignore let it in
    assert "annotations" not in created["metadata"]
    assert created["spec"]["replicas"] == 2
    validate_deployment(created)


async def test_admission_keeps_working_across_a_serving_certificate_rotation(deployed: Deployed) -> None:
    before = await deployed.create(deployment_manifest("web", namespace=APP_NAMESPACE, labels=ENABLED))
    assert before["metadata"]["annotations"]["aihpa/managed"] == "true"
    old_fingerprint = deployed.certs.fingerprint

    # A new CA: trust both while the serving certificate changes over, then only the new one.
    new_ca, _ = generate(service=SERVICE, namespace=OWN_NAMESPACE, now=time.time())
    both = deployed.ca.cert_pem + new_ca.cert_pem
    await inject_ca_bundle_live(deployed.kube, name=CONFIG_NAME, ca_pem=both)
    rotated = issue_serving_cert(new_ca, service=SERVICE, namespace=OWN_NAMESPACE, now=time.time())
    write_files(deployed.cert_dir, rotated, ca=new_ca)
    assert deployed.certs.check()  # swapped in place: the listener was never restarted
    assert deployed.certs.fingerprint != old_fingerprint
    await inject_ca_bundle_live(deployed.kube, name=CONFIG_NAME, ca_pem=new_ca.cert_pem)
    # New connections from the API server must now handshake with the rotated certificate against the new CA alone.
    await deployed.cluster.admission.close()
    after = await deployed.create(deployment_manifest("api", namespace=APP_NAMESPACE, labels=ENABLED))
    assert after["metadata"]["annotations"]["aihpa/managed"] == "true"
    validate_deployment(after)

    # The old CA alone no longer verifies the webhook: with failurePolicy Ignore the Deployment goes in unchanged.
    await inject_ca_bundle_live(deployed.kube, name=CONFIG_NAME, ca_pem=deployed.ca.cert_pem)
    stale = await deployed.create(deployment_manifest("stale", namespace=APP_NAMESPACE, labels=ENABLED))
    assert "annotations" not in stale["metadata"]
