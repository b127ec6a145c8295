"""Bad requests get Kubernetes Status errors with the API server's codes and reasons, never a traceback."""

from __future__ import annotations

import io

import aiohttp
import pytest

from aihpa.sim import Cluster
from aihpa.sim.server import MAX_BODY_BYTES
from aihpa.sim.testing import deployment_manifest

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
JSON = {"Content-Type": "application/json"}


async def _status(resp: aiohttp.ClientResponse) -> dict[str, object]:
    body = await resp.json()
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == resp.status
    assert "Traceback" not in str(body)
    return dict(body)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "code", "reason"),
    [
        ("POST", DEPLOYMENTS, b"{not json", JSON, 400, "BadRequest"),
        ("GET", "/apis/apps/v1/namespaces/default/widgets", None, {}, 404, "NotFound"),
        ("GET", "/apis/nope.example.com/v1/things", None, {}, 404, "NotFound"),
        ("GET", "/no/such/path", None, {}, 404, "NotFound"),
        ("GET", f"{DEPLOYMENTS}/missing", None, {}, 404, "NotFound"),
        ("POST", DEPLOYMENTS, b'{"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "x"}}',
         JSON, 400, "BadRequest"),
        ("POST", DEPLOYMENTS, b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}', JSON, 400,
         "BadRequest"),
        ("POST", DEPLOYMENTS, b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "Bad_Name"}}',
         JSON, 422, "Invalid"),
        ("POST", "/apis/apps/v1/namespaces/nowhere/deployments",
         b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}', JSON, 404, "NotFound"),
        ("PATCH", f"{DEPLOYMENTS}/web", b'{"spec": {}}', {"Content-Type": "text/plain"}, 415,
         "UnsupportedMediaType"),
        ("PATCH", f"{DEPLOYMENTS}/web", b'[{"op": "frobnicate", "path": "/spec"}]',
         {"Content-Type": "application/json-patch+json"}, 400, "BadRequest"),
        ("PATCH", f"{DEPLOYMENTS}/web", b'[{"op": "test", "path": "/spec/replicas", "value": 9}]',
         {"Content-Type": "application/json-patch+json"}, 422, "Invalid"),
        ("PUT", f"{DEPLOYMENTS}/web/scale", b'{"kind": "Scale", "apiVersion": "autoscaling/v1", '
         b'"metadata": {"name": "web"}, "spec": {"replicas": -1}}', JSON, 422, "Invalid"),
        ("GET", f"{DEPLOYMENTS}?limit=abc", None, {}, 400, "BadRequest"),
        ("GET", f"{DEPLOYMENTS}?labelSelector=a%20in%20", None, {}, 400, "BadRequest"),
        ("DELETE", "/api/v1/namespaces/default", None, {}, 403, "Forbidden"),
        ("POST", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", b"{}", JSON, 405, "MethodNotAllowed"),
        ("POST", "/api/v1/namespaces/default/pods", b"k8s\x00\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x00",
         {"Content-Type": "application/vnd.kubernetes.protobuf"}, 415, "UnsupportedMediaType"),
        ("POST", "/api/v1/namespaces/default/configmaps", b"\x0a\xff",
         {"Content-Type": "application/vnd.kubernetes.protobuf"}, 415, "UnsupportedMediaType"),
    ],
)
async def test_bad_request_gets_a_status_error(
    sim_cluster: Cluster,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    code: int,
    reason: str,
) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    async with http.request(method, path, data=body, headers=headers) as resp:
        assert resp.status == code
        status = await _status(resp)
    assert status["reason"] == reason


async def test_oversized_body_is_refused_with_413(http: aiohttp.ClientSession) -> None:
    big = b'{"metadata": {"name": "x"}, "data": {"k": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}}'
    async with http.post("/api/v1/namespaces/default/configmaps", data=io.BytesIO(big), headers=JSON) as resp:
        assert resp.status == 413
        status = await _status(resp)
    assert status["reason"] == "RequestEntityTooLarge"


async def test_creating_an_existing_object_is_already_exists(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    async with http.post(DEPLOYMENTS, json=deployment_manifest("web")) as resp:
        assert resp.status == 409
        status = await _status(resp)
    assert status["reason"] == "AlreadyExists"
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


async def test_internal_errors_are_reported_as_status_without_details(
    sim_cluster: Cluster, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sim_cluster.api, "list", boom)
    async with http.get(DEPLOYMENTS) as resp:
        assert resp.status == 500
        status = await _status(resp)
    assert status["reason"] == "InternalError"
    assert "secret internals" not in str(status)
    assert "secret internals" in caplog.text
