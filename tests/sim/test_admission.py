"""Mutating admission as the API server does it: HTTPS verified with the caBundle, AdmissionReview v1, selectors,
JSONPatch applied, warnings surfaced, timeouts and failurePolicy obeyed."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aihpa.sim import Cluster
from aihpa.sim.testing import Kubectl, deployment_manifest
from aihpa.sim.tls import CertPair, make_ca, make_server_cert

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
Answer = Callable[[dict[str, Any]], Any]


def _patch(ops: list[dict[str, Any]]) -> str:
    return base64.b64encode(json.dumps(ops).encode()).decode()


def label_and_warn(review: dict[str, Any]) -> dict[str, Any]:
    return {"uid": review["request"]["uid"], "allowed": True, "patchType": "JSONPatch",
            "patch": _patch([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]),
            "warnings": ["replicas adjusted by aihpa", 'forecast "stale"']}


class Webhook:
    """A real HTTPS webhook on 127.0.0.1 whose answers the test scripts."""

    def __init__(self, answer: Answer, ca: CertPair) -> None:
        self.answer = answer
        self.ca = ca
        self.reviews: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews.append(review)
        response = self.answer(review)
        if response == "hang":
            await asyncio.wait_for(self.release.wait(), 10)
            response = {"uid": review["request"]["uid"], "allowed": True}
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                  "response": response})

    def configuration(self, *, failure_policy: str = "Fail", timeout: int = 5, **hook: Any) -> dict[str, Any]:
        webhook = {
            "name": "mutate.aihpa.io",
            "clientConfig": {"service": {"namespace": "aihpa-system", "name": "aihpa-webhook", "path": "/mutate",
                                         "port": 443},
                             "caBundle": base64.b64encode(self.ca.cert_pem).decode()},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
                       "resources": ["deployments", "deployments/scale"]}],
            "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": failure_policy, "timeoutSeconds": timeout, **hook,
        }
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "aihpa"}, "webhooks": [webhook]}


def _server_context(cert: CertPair) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "tls.crt").write_bytes(cert.cert_pem)
        Path(tmp, "tls.key").write_bytes(cert.key_pem)
        ctx.load_cert_chain(Path(tmp, "tls.crt"), Path(tmp, "tls.key"))
    return ctx


@asynccontextmanager
async def webhook_server(cluster: Cluster, answer: Answer) -> AsyncIterator[Webhook]:
    ca = make_ca("webhook-ca")
    cert = make_server_cert(ca, ["aihpa-webhook.aihpa-system.svc", "127.0.0.1"])
    hook = Webhook(answer, ca)
    app = web.Application()
    app.router.add_post("/mutate", hook.handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_server_context(cert))
    await site.start()
    hook.port = int(runner.addresses[0][1])
    cluster.register_service("aihpa-system", "aihpa-webhook", "127.0.0.1", hook.port)
    try:
        yield hook
    finally:
        hook.release.set()
        await cluster.admission.close()
        await runner.cleanup()


async def test_webhook_mutates_created_deployments_and_its_warnings_reach_the_client(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        await sim_cluster.create(hook.configuration())
        async with http.post(DEPLOYMENTS, json=deployment_manifest("web")) as resp:
            assert resp.status == 201
            created = await resp.json()
            warnings = resp.headers.getall("Warning")
    assert created["metadata"]["labels"]["mutated"] == "yes"
    assert warnings == ['299 - "replicas adjusted by aihpa"', '299 - "forecast \'stale\'"']
    (review,) = hook.reviews
    request = review["request"]
    assert review["apiVersion"] == "admission.k8s.io/v1"
    assert request["uid"]
    assert request["operation"] == "CREATE"
    assert request["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert request["namespace"] == "default"
    assert request["object"]["metadata"]["name"] == "web"
    assert request["oldObject"] is None


async def test_scale_updates_reach_a_webhook_that_asks_for_the_scale_subresource(sim_cluster: Cluster) -> None:
    def cap_at_three(review: dict[str, Any]) -> dict[str, Any]:
        req = review["request"]
        out: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        if req.get("subResource") == "scale" and req["object"]["spec"]["replicas"] > 3:
            out["patch"] = _patch([{"op": "replace", "path": "/spec/replicas", "value": 3}])
            out["patchType"] = "JSONPatch"
        return out

    async with webhook_server(sim_cluster, cap_at_three) as hook:
        await sim_cluster.create(hook.configuration())
        await sim_cluster.create(deployment_manifest("web"))
        scale = await sim_cluster.scale("web", 10)
    assert scale["spec"]["replicas"] == 3
    assert [r["request"].get("subResource") for r in hook.reviews] == [None, "scale"]
    assert hook.reviews[1]["request"]["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


async def test_object_and_namespace_selectors_decide_which_objects_are_sent(sim_cluster: Cluster) -> None:
    await sim_cluster.ensure_namespace("opted-in", labels={"aihpa.io/webhook": "enabled"})
    await sim_cluster.ensure_namespace("opted-out")
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        await sim_cluster.create(hook.configuration(
            namespaceSelector={"matchLabels": {"aihpa.io/webhook": "enabled"}},
            objectSelector={"matchExpressions": [{"key": "aihpa.io/skip", "operator": "DoesNotExist"}]}))
        await sim_cluster.create(deployment_manifest("a", namespace="opted-in"))
        await sim_cluster.create(deployment_manifest("b", namespace="opted-out"))
        await sim_cluster.create(deployment_manifest("c", namespace="opted-in", labels={"aihpa.io/skip": "1"}))
    assert [r["request"]["name"] for r in hook.reviews] == ["a"]


async def test_webhook_addressed_by_url_is_called_directly(sim_cluster: Cluster) -> None:
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        config = hook.configuration()
        client_config = config["webhooks"][0]["clientConfig"]
        del client_config["service"]
        client_config["url"] = f"https://127.0.0.1:{hook.port}/mutate"
        sim_cluster.admission.services.clear()  # no service lookup may be involved
        await sim_cluster.create(config)
        created = await sim_cluster.create(deployment_manifest("web"))
    assert created["metadata"]["labels"]["mutated"] == "yes"
    assert len(hook.reviews) == 1


@pytest.mark.parametrize(("policy", "created"), [("Ignore", True), ("Fail", False)])
async def test_unreachable_webhook_follows_the_failure_policy(
    sim_cluster: Cluster, http: aiohttp.ClientSession, policy: str, created: bool
) -> None:
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        config = hook.configuration(failure_policy=policy)
    # the server is gone now: connections are refused
    await sim_cluster.create(config)
    async with http.post(DEPLOYMENTS, json=deployment_manifest("web")) as resp:
        body = await resp.json()
    if created:
        assert resp.status == 201
        assert "mutated" not in body["metadata"]["labels"]
    else:
        assert resp.status == 500
        assert body["reason"] == "InternalError"
        assert 'failed calling webhook "mutate.aihpa.io"' in body["message"]


async def test_slow_webhook_times_out_after_timeout_seconds(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    async with webhook_server(sim_cluster, lambda _r: "hang") as hook:
        await sim_cluster.create(hook.configuration(timeout=1, failure_policy="Fail"))
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with http.post(DEPLOYMENTS, json=deployment_manifest("web")) as resp:
            body = await resp.json()
        elapsed = loop.time() - began
    assert resp.status == 500
    assert "context deadline exceeded" in body["message"]
    assert 0.9 <= elapsed < 5


async def test_webhook_with_the_wrong_ca_is_not_trusted(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        config = hook.configuration()
        config["webhooks"][0]["clientConfig"]["caBundle"] = base64.b64encode(make_ca("other").cert_pem).decode()
        await sim_cluster.create(config)
        async with http.post(DEPLOYMENTS, json=deployment_manifest("web")) as resp:
            body = await resp.json()
    assert resp.status == 500
    assert hook.reviews == []
    assert "certificate" in body["message"].lower()


@pytest.mark.parametrize(
    ("answer", "code", "text"),
    [
        (lambda r: {"uid": r["request"]["uid"], "allowed": False,
                    "status": {"code": 403, "message": "no autoscaling here"}}, 403, "no autoscaling here"),
        (lambda r: {"uid": "not-the-request-uid", "allowed": True}, 500, "expected response.uid"),
    ],
)
async def test_denials_and_bad_answers_are_refused(
    sim_cluster: Cluster, http: aiohttp.ClientSession, answer: Answer, code: int, text: str
) -> None:
    async with webhook_server(sim_cluster, answer) as hook:
        await sim_cluster.create(hook.configuration())
        async with http.post(DEPLOYMENTS, json=deployment_manifest("web")) as resp:
            body = await resp.json()
    assert resp.status == code
    assert text in body["message"]
    assert sim_cluster.get("apps/v1", "Deployment", "web") is None


async def test_dry_run_skips_webhooks_with_side_effects(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        await sim_cluster.create(hook.configuration(sideEffects="Some"))
        async with http.post(DEPLOYMENTS, params={"dryRun": "All"}, json=deployment_manifest("web")) as resp:
            body = await resp.json()
    assert resp.status == 400
    assert "does not support dry run" in body["message"]
    assert hook.reviews == []


@pytest.mark.slow
async def test_kubectl_prints_webhook_warnings(sim_cluster: Cluster, kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "web.json"
    manifest.write_text(json.dumps(deployment_manifest("web")))
    async with webhook_server(sim_cluster, label_and_warn) as hook:
        await sim_cluster.create(hook.configuration())
        result = await kubectl("apply", "-f", str(manifest))
    assert result.rc == 0, result.err
    assert "Warning: replicas adjusted by aihpa" in result.err
