"""Certificates: generation, files and Secrets, caBundle injection, and a source that reloads and renews in place."""

from __future__ import annotations

import asyncio
import base64
import stat
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from aihpa.clock import VirtualClock
from aihpa.errors import UserError
from aihpa.webhook import certs
from aihpa.webhook.certs import CertificateAuthority, CertificateSource, ServingCert
from tests.webhook.conftest import K8S_VERSION, NOW, WEBHOOKS

DAY = 86_400.0


def test_the_serving_certificate_names_every_service_dns_form_and_the_extra_ips(
    pki: tuple[CertificateAuthority, ServingCert],
) -> None:
    ca, serving = pki
    cert = x509.load_pem_x509_certificate(serving.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "aihpa-webhook",
        "aihpa-webhook.aihpa",
        "aihpa-webhook.aihpa.svc",
        "aihpa-webhook.aihpa.svc.cluster.local",
    ]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    cert.verify_directly_issued_by(ca_cert)


def test_lifetimes_and_renewal_at_two_thirds() -> None:
    ca, serving = certs.generate(service="s", namespace="n", now=NOW, lifetime_s=30 * DAY)
    not_before, not_after = certs.cert_validity(serving.cert_pem)
    assert not_before == NOW - 300 and not_after == NOW + 30 * DAY
    assert certs.renewal_time(not_before, not_after) == pytest.approx(not_before + 20 * DAY + 200)
    assert certs.cert_validity(ca.cert_pem)[1] == NOW + 10 * 365 * DAY


def test_a_serving_certificate_never_outlives_its_ca() -> None:
    ca = certs.generate_ca(now=NOW, lifetime_s=10 * DAY)
    serving = certs.issue_serving_cert(ca, service="s", namespace="n", now=NOW, lifetime_s=365 * DAY)
    assert certs.cert_validity(serving.cert_pem)[1] == certs.cert_validity(ca.cert_pem)[1]


@pytest.mark.parametrize(("service", "namespace", "ips"), [("", "n", ()), ("s", "", ()), ("s", "n", ("not-an-ip",))])
def test_bad_names_and_addresses_are_user_errors(service: str, namespace: str, ips: tuple[str, ...]) -> None:
    with pytest.raises(UserError):
        certs.generate(service=service, namespace=namespace, now=NOW, ips=ips)


def test_files_round_trip_with_private_keys_readable_by_the_owner_only(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    ca, serving = pki
    certs.write_files(tmp_path / "tls", serving, ca=ca)
    assert certs.read_files(tmp_path / "tls") == serving
    assert certs.read_ca(tmp_path / "tls") == ca
    for name in ("tls.key", "ca.key"):
        assert stat.S_IMODE((tmp_path / "tls" / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    with pytest.raises(UserError, match="does not exist"):
        certs.read_files(tmp_path / "missing")


def test_a_tls_secret_manifest_is_valid_round_trips_and_never_holds_the_ca_key(
    pki: tuple[CertificateAuthority, ServingCert],
) -> None:
    ca, serving = pki
    secret = certs.tls_secret(serving, name="aihpa-webhook-tls", namespace="aihpa")
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    assert secret["type"] == "kubernetes.io/tls"
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert base64.b64encode(ca.key_pem).decode() not in yaml.safe_dump(secret)
    assert certs.serving_from_secret(yaml.safe_load(yaml.safe_dump(secret))) == serving
    plain = {**secret, "stringData": {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}}
    del plain["data"]
    assert certs.serving_from_secret(plain) == serving


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"type": "Opaque"}, "not a kubernetes.io/tls Secret"),
        ({"data": {"tls.crt": "!!", "tls.key": "", "ca.crt": ""}}, "not base64"),
        ({"data": {}}, "has no 'tls.crt'"),
    ],
)
def test_a_secret_that_is_not_a_tls_pair_is_a_user_error(
    edit: dict[str, object], message: str, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    secret = {**certs.tls_secret(pki[1], name="x", namespace="y"), **edit}
    with pytest.raises(UserError, match=message):
        certs.serving_from_secret(secret)


def test_the_ca_bundle_is_injected_into_the_webhook_configuration(
    pki: tuple[CertificateAuthority, ServingCert],
) -> None:
    config = yaml.safe_load((WEBHOOKS / "mutatingwebhookconfiguration.yaml").read_text())
    injected = certs.inject_ca_bundle(config, pki[0].cert_pem)
    kubernetes_validate.validate(injected, K8S_VERSION, strict=True)
    bundle = injected["webhooks"][0]["clientConfig"]["caBundle"]
    assert base64.b64decode(bundle) == pki[0].cert_pem
    assert config["webhooks"][0]["clientConfig"]["caBundle"] == ""  # the input is not modified
    with pytest.raises(UserError, match="no webhook"):
        certs.inject_ca_bundle(config, pki[0].cert_pem, webhook_names=["other.example"])
    with pytest.raises(UserError, match="not a MutatingWebhookConfiguration"):
        certs.inject_ca_bundle({"kind": "Service"}, pki[0].cert_pem)
    with pytest.raises(ValueError):
        certs.inject_ca_bundle(config, b"not a certificate")


def _write_new_pair(directory: Path, ca: CertificateAuthority, *, now: float) -> ServingCert:
    serving = certs.issue_serving_cert(ca, service="aihpa-webhook", namespace="aihpa", now=now, ips=["127.0.0.1"])
    certs.write_files(directory, serving)
    return serving


def test_the_source_reloads_only_when_the_files_change(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    ca, serving = pki
    certs.write_files(tmp_path, serving)
    source = CertificateSource.from_directory(tmp_path, clock=VirtualClock(NOW))
    context = source.ssl_context
    first = source.fingerprint
    assert source.check() is False
    _write_new_pair(tmp_path, ca, now=NOW)
    assert source.check() is True
    assert source.fingerprint != first
    assert source.ssl_context is context  # swapped in place: the listener keeps its context
    assert source.check() is False
    assert source.reloads == 2


def test_a_broken_pair_keeps_the_old_certificate_serving_and_is_reported(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    ca, serving = pki
    certs.write_files(tmp_path, serving)
    source = CertificateSource.from_directory(tmp_path, clock=VirtualClock(NOW))
    before = source.fingerprint
    other = certs.issue_serving_cert(ca, service="x", namespace="y", now=NOW)
    (tmp_path / "tls.key").write_bytes(other.key_pem)  # a key that does not match the certificate
    assert source.check() is False
    assert source.fingerprint == before
    health = source.health()
    assert health.ok is True  # still serving a valid certificate
    assert "does not match" in health.detail["lastError"]
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    assert source.check() is True
    assert "lastError" not in source.health().detail


def test_a_source_with_missing_files_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot load"):
        CertificateSource.from_directory(tmp_path)


def test_a_self_managed_source_renews_at_two_thirds_of_the_lifetime_with_the_same_ca(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    source = CertificateSource.self_managed(
        tmp_path, service="aihpa-webhook", namespace="aihpa", lifetime_s=30 * DAY, clock=clock
    )
    ca_pem = (tmp_path / "ca.crt").read_bytes()
    first, first_expiry = source.fingerprint, source.not_after
    clock.advance(source.renew_at - clock.now() - 1)
    assert source.check() is False
    assert source.health().detail["renewalDue"] is False
    clock.advance(2)
    assert source.check() is True
    assert source.fingerprint != first and source.not_after > first_expiry
    assert (tmp_path / "ca.crt").read_bytes() == ca_pem
    x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(ca_pem)
    )
    # A restart finds the directory populated and serves what is there.
    again = CertificateSource.self_managed(tmp_path, service="aihpa-webhook", namespace="aihpa", clock=clock)
    assert again.fingerprint == source.fingerprint


def test_health_fails_once_the_certificate_has_expired(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    ca, _ = pki
    clock = VirtualClock(NOW)
    certs.write_files(tmp_path, certs.issue_serving_cert(ca, service="s", namespace="n", now=NOW, lifetime_s=DAY))
    source = CertificateSource.from_directory(tmp_path, clock=clock)
    assert source.health().ok is True
    clock.advance(2 * DAY)
    health = source.health()
    assert health.ok is False and health.detail["expiresInSeconds"] < 0 and health.detail["renewalDue"] is True


async def test_run_checks_on_the_clock_and_stops_after_its_iterations(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    ca, serving = pki
    clock = VirtualClock(NOW)
    certs.write_files(tmp_path, serving)
    source = CertificateSource.from_directory(tmp_path, clock=clock)
    task = asyncio.create_task(source.run(interval_s=30.0, max_iterations=2))
    await asyncio.sleep(0)  # let the task reach its first sleep on the clock
    await clock.run_for(30.0)
    assert source.reloads == 1 and not task.done()
    _write_new_pair(tmp_path, ca, now=NOW)
    await clock.run_for(30.0)
    assert task.done()
    await task
    assert source.reloads == 2
