"""The webhook served over real TLS on 127.0.0.1: reviews, bad bodies, limits, fail-open, health, metrics, rotation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aihpa.clock import VirtualClock
from aihpa.profiles import InMemoryProfileSource, ReplicaProfile
from aihpa.webhook import certs, create_app, start_server
from aihpa.webhook.admission import decode_patch
from aihpa.webhook.certs import CertificateAuthority, CertificateSource, ServingCert
from aihpa.webhook.settings import WebhookSettings
from tests.webhook.conftest import NOW, RESPONSE_SCHEMA, load_fixture, profile

SERVICE_NAME = "aihpa-webhook.aihpa.svc"


@dataclass
class Served:
    url: str
    port: int
    source: CertificateSource
    app: web.Application
    client_ssl: ssl.SSLContext
    session: aiohttp.ClientSession
    cert_dir: Path
    ca: CertificateAuthority


def client_context(ca_pem: bytes, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    # Hostname verification stays on (the default of create_default_context).
    context = ssl.create_default_context(cadata=ca_pem.decode())
    if maximum is not None:
        with warnings.catch_warnings():
            # Asking for an old protocol is the point: the server must refuse it.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = maximum
    return context


async def handshakes_settled() -> None:
    """Wait for the server to finish handshakes that the client broke off (they end once it sees the close)."""
    pending = [
        t
        for t in asyncio.all_tasks()
        if not t.done()
        and t.get_coro().__qualname__.endswith(("_accept_connection2", "_BoundedSite._open"))  # type: ignore[union-attr]
    ]
    async with asyncio.timeout(10):
        await asyncio.gather(*pending, return_exceptions=True)


class RaisingProfiles:
    def by_workload(self, namespace: str, name: str) -> ReplicaProfile | None:
        raise RuntimeError("profile store unavailable")

    def by_app(self, namespace: str, app: str) -> ReplicaProfile | None:
        raise RuntimeError("profile store unavailable")


async def serve(
    tmp_path: Path,
    pki: tuple[CertificateAuthority, ServingCert],
    *,
    settings: WebhookSettings | None = None,
    profiles: Any = None,
    cert_clock: VirtualClock | None = None,
) -> tuple[Served, web.AppRunner]:
    ca, serving = pki
    certs.write_files(tmp_path, serving)
    source = CertificateSource.from_directory(tmp_path, clock=cert_clock or VirtualClock(NOW))
    app = create_app(
        settings or WebhookSettings(model_version="bilstm-test"),
        profiles if profiles is not None else InMemoryProfileSource([profile()]),
        certs=source,
        clock=VirtualClock(NOW),
    )
    runner, port = await start_server(app, host="127.0.0.1", port=0, ssl_context=source.ssl_context)
    client_ssl = client_context(ca.cert_pem)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl))
    return Served(f"https://127.0.0.1:{port}", port, source, app, client_ssl, session, tmp_path, ca), runner


@pytest.fixture
async def served(tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]) -> AsyncIterator[Served]:
    s, runner = await serve(tmp_path, pki)
    try:
        yield s
    finally:
        await s.session.close()
        await runner.cleanup()


async def post(s: Served, body: bytes | str, **kwargs: Any) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    async with s.session.post(
        s.url + "/mutate", data=data, headers={"Content-Type": "application/json"}, **kwargs
    ) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("name", "mutated"),
    [
        ("create-labeled", True),
        ("create-labeled-invalid-annotations", True),
        ("update-adds-label", True),
        ("create-unlabeled", False),
        ("non-deployment", False),
    ],
)
async def test_each_sample_review_is_answered_over_tls_with_a_well_formed_review(
    served: Served, name: str, mutated: bool
) -> None:
    body = load_fixture(name)
    status, answer = await post(served, json.dumps(body))
    assert status == 200
    assert not list(RESPONSE_SCHEMA.iter_errors(answer))
    assert answer["response"]["uid"] == body["request"]["uid"]
    assert answer["response"]["allowed"] is True
    assert ("patch" in answer["response"]) is mutated


async def test_the_forecast_uses_the_apps_clock(served: Served) -> None:
    _, answer = await post(served, json.dumps(load_fixture("create-labeled")))
    replicas = [op for op in decode_patch(answer["response"]) if op["path"] == "/spec/replicas"]
    assert replicas == [{"op": "replace", "path": "/spec/replicas", "value": 12}]


async def test_the_certificate_is_verified_for_the_service_name_and_refused_for_another(served: Served) -> None:
    async with served.session.get(served.url + "/readyz", server_hostname=SERVICE_NAME) as resp:
        assert resp.status == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with served.session.get(served.url + "/readyz", server_hostname="webhook.example.com"):
            pass
    await handshakes_settled()


async def test_a_client_limited_to_tls_1_1_cannot_connect(served: Served) -> None:
    assert served.source.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    old = client_context(served.ca.cert_pem, maximum=ssl.TLSVersion.TLSv1_1)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _, writer = await asyncio.open_connection("127.0.0.1", served.port, ssl=old)
        writer.close()
        await writer.wait_closed()
    await handshakes_settled()


MALFORMED_BODIES: list[tuple[bytes, str]] = [
    (b"", "not valid JSON"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"[1, 2]", "not an AdmissionReview admission.k8s.io/v1: an AdmissionReview must be a JSON object"),
    (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion must be"),
    (json.dumps(load_fixture("malformed")).encode(), "request.uid is required"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": NaN}', "request must be"),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED_BODIES)
async def test_a_malformed_body_gets_400_with_a_clear_message(served: Served, body: bytes, message: str) -> None:
    status, answer = await post(served, body)
    assert status == 400
    assert message in answer["error"]


async def test_a_body_over_the_limit_gets_413(tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]) -> None:
    s, runner = await serve(tmp_path, pki, settings=WebhookSettings(max_body_bytes=4096))
    try:
        status, answer = await post(s, b" " * 5000)
        assert status == 413 and "exceeds 4096 bytes" in answer["error"]

        # A chunked upload declares no length: the limit still holds while reading.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b" " * 1000

        async with s.session.post(s.url + "/mutate", data=chunks()) as resp:
            assert resp.status == 413
        async with s.session.get(s.url + "/metrics") as resp:
            assert 'aihpa_webhook_admissions_total{outcome="too_large"} 2.0' in await resp.text()
    finally:
        await s.session.close()
        await runner.cleanup()


async def test_only_post_is_accepted_on_mutate(served: Served) -> None:
    async with served.session.get(served.url + "/mutate") as resp:
        assert resp.status == 405


async def test_an_internal_error_fails_open_with_a_warning(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert], caplog: pytest.LogCaptureFixture
) -> None:
    s, runner = await serve(tmp_path, pki, profiles=RaisingProfiles())
    try:
        status, answer = await post(s, json.dumps(load_fixture("create-labeled")))
        assert status == 200
        assert answer["response"] == {
            "uid": load_fixture("create-labeled")["request"]["uid"],
            "allowed": True,
            "warnings": ["aihpa: internal error; admitted unchanged"],
        }
        assert "profile store unavailable" in caplog.text
        async with s.session.get(s.url + "/metrics") as resp:
            assert 'aihpa_webhook_admissions_total{outcome="failed_open"} 1.0' in await resp.text()
    finally:
        await s.session.close()
        await runner.cleanup()


async def test_a_body_that_does_not_arrive_in_time_gets_408(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    s, runner = await serve(tmp_path, pki, settings=WebhookSettings(answer_within_s=0.2))
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", s.port, ssl=s.client_ssl, server_hostname=SERVICE_NAME
        )
        writer.write(
            b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"
        )
        await writer.drain()
        # The server's own 0.2 s budget ends the wait; the outer bound only guards the test.
        async with asyncio.timeout(10):
            status_line = await reader.readline()
        assert status_line.split()[1] == b"408"
        writer.close()
        await writer.wait_closed()
    finally:
        await s.session.close()
        await runner.cleanup()


async def test_health_readiness_and_metrics(served: Served) -> None:
    async with served.session.get(served.url + "/healthz") as resp:
        health = await resp.json()
        assert resp.status == 200 and health["status"] == "ok"
        assert health["certificate"]["fingerprint"] == served.source.fingerprint
    async with served.session.get(served.url + "/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ready"
    await post(served, json.dumps(load_fixture("create-labeled")))
    await post(served, json.dumps(load_fixture("create-unlabeled")))
    await post(served, b"{")
    async with served.session.get(served.url + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert "aihpa_webhook_request_duration_seconds_count 3.0" in text
    for outcome, count in (("mutated", 1), ("allowed", 1), ("malformed", 1), ("timeout", 0)):
        assert f'aihpa_webhook_admissions_total{{outcome="{outcome}"}} {count}.0' in text
    expiry = [line.split()[1] for line in text.splitlines() if line.startswith("aihpa_webhook_certificate_expiry")]
    assert [float(v) for v in expiry] == [served.source.not_after]


async def test_healthz_fails_when_the_certificate_has_expired(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    clock = VirtualClock(NOW)
    s, runner = await serve(tmp_path, pki, cert_clock=clock)
    try:
        clock.advance(2 * 365 * 86_400.0)
        async with s.session.get(s.url + "/healthz") as resp:
            assert resp.status == 503 and (await resp.json())["status"] == "unhealthy"
    finally:
        await s.session.close()
        await runner.cleanup()


async def _peer_fingerprint(s: Served) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", s.port, ssl=s.client_ssl, server_hostname=SERVICE_NAME)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest(), reader, writer


async def test_a_rotated_certificate_is_served_to_new_handshakes_without_restarting_the_listener(
    served: Served,
) -> None:
    before, reader, writer = await _peer_fingerprint(served)
    assert before == served.source.fingerprint
    # Real handshakes check validity against the wall clock.
    rotated = certs.issue_serving_cert(
        served.ca, service="aihpa-webhook", namespace="aihpa", now=time.time(), ips=["127.0.0.1"]
    )
    certs.write_files(served.cert_dir, rotated)
    assert served.source.check() is True
    after, _, writer2 = await _peer_fingerprint(served)
    assert after == served.source.fingerprint != before
    # The connection opened before the swap keeps working on its old session.
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(10):
        assert (await reader.readline()).split()[1] == b"200"
    for w in (writer, writer2):
        w.close()
        await w.wait_closed()
    async with served.session.get(served.url + "/readyz") as resp:
        assert resp.status == 200


async def test_two_apps_in_one_process_keep_their_own_metrics_and_run_without_tls_in_process() -> None:
    settings = WebhookSettings()
    apps = [create_app(settings, InMemoryProfileSource(), clock=VirtualClock(NOW)) for _ in range(2)]
    runner, port = await start_server(apps[0], host="127.0.0.1", port=0, ssl_context=None)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}"
            async with session.post(url + "/mutate", json=load_fixture("create-unlabeled")) as resp:
                assert resp.status == 200
            async with session.get(url + "/healthz") as resp:
                assert (await resp.json()) == {"status": "ok", "certificate": None}
            async with session.get(url + "/metrics") as resp:
                assert 'aihpa_webhook_admissions_total{outcome="allowed"} 1.0' in await resp.text()
    finally:
        await runner.cleanup()
