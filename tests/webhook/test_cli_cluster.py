"""The certificate and webhook commands, and the live operations behind them, against a simulated cluster.

The commands run their own event loop; the tests run them in a worker thread so the cluster keeps serving on this one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from aihpa.k8s import ConflictError, KubeClient
from aihpa.profiles import configmaps_for
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest
from aihpa.webhook.certs import generate, tls_secret
from aihpa.webhook.kube_certs import apply_secret, inject_ca_bundle_live
from tests.webhook.conftest import WEBHOOKS, validate_deployment
from tests.webhook.test_cli_commands import SERVE, main
from tests.webhook.test_end_to_end import ENABLED, MODEL, flat_profile

CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
SECRETS = "/api/v1/namespaces/aihpa/secrets"


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def generate_files(out: Path) -> bytes:
    args = ("certs", "generate", "--namespace", "aihpa", "--out-dir", str(out), "--ip", "127.0.0.1")
    assert await run_cli(*args) == 0
    return (out / "ca.crt").read_bytes()


async def create_shipped_configuration(kube: KubeClient) -> None:
    config = yaml.safe_load((WEBHOOKS / "mutatingwebhookconfiguration.yaml").read_text())
    await kube.request("POST", CONFIGS, body=config)


async def test_inject_ca_bundle_by_name_updates_the_live_configuration_retrying_a_conflict(
    sim_cluster: Cluster, kube: KubeClient, sim_kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_pem = await generate_files(tmp_path / "tls")
    await create_shipped_configuration(kube)
    # Someone else writes between our read and our write, once: the command reads again and wins the second time.
    fault = sim_cluster.faults.add(Fault(verb="update", resource="mutatingwebhookconfigurations", status=409, times=1))
    rc = await run_cli(
        "certs", "inject-ca-bundle", "--name", "aihpa-webhook", "--ca-file", str(tmp_path / "tls" / "ca.crt"),
        "--kubeconfig", str(sim_kubeconfig),
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert fault.fired == 1
    assert "set caBundle on 1 webhook(s)" in capsys.readouterr().out
    stored = await kube.get(f"{CONFIGS}/aihpa-webhook")
    assert base64.b64decode(stored["webhooks"][0]["clientConfig"]["caBundle"]) == ca_pem
    assert stored["webhooks"][0]["objectSelector"] == {"matchLabels": ENABLED}  # the rest is as shipped


async def test_inject_ca_bundle_by_name_of_a_missing_configuration_is_a_one_line_error(
    sim_cluster: Cluster, sim_kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await generate_files(tmp_path / "tls")
    capsys.readouterr()
    rc = await run_cli(
        "certs", "inject-ca-bundle", "--name", "nope", "--ca-file", str(tmp_path / "tls" / "ca.crt"),
        "--kubeconfig", str(sim_kubeconfig),
    )  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_inject_ca_bundle_refuses_flags_of_the_other_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    assert await run_cli("certs", "inject-ca-bundle", "--name", "a", "--ca-file", str(ca), "--out", "x.yaml") == 2
    assert "--out is for --config" in capsys.readouterr().err


async def test_certs_generate_applies_the_tls_secret_and_replaces_its_data_in_place(
    sim_cluster: Cluster, kube: KubeClient, sim_kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    args = ("certs", "generate", "--namespace", "aihpa", "--secret-name", "aihpa-webhook-tls",
            "--kubeconfig", str(sim_kubeconfig))  # fmt: skip
    assert await run_cli(*args) == 0, capsys.readouterr().err
    assert "applied Secret aihpa/aihpa-webhook-tls" in capsys.readouterr().out
    first = await kube.get(f"{SECRETS}/aihpa-webhook-tls")
    assert first["type"] == "kubernetes.io/tls"
    assert set(first["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    # A label someone else added survives the rotation; only the certificates change.
    first["metadata"]["labels"]["team"] = "platform"
    await kube.request("PUT", f"{SECRETS}/aihpa-webhook-tls", body=first)

    assert await run_cli(*args) == 0, capsys.readouterr().err
    second = await kube.get(f"{SECRETS}/aihpa-webhook-tls")
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["labels"]["team"] == "platform"
    assert second["data"]["tls.crt"] != first["data"]["tls.crt"]


async def test_certs_generate_without_a_destination_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli("certs", "generate", "--namespace", "aihpa") == 2
    assert "--out-dir" in capsys.readouterr().err


@pytest.mark.slow
async def test_the_webhook_command_serves_profiles_from_the_published_configmaps(
    sim_cluster: Cluster, kube: KubeClient, sim_kubeconfig: Path, tmp_path: Path
) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    await sim_cluster.ensure_namespace("shop")
    # The command admits on the wall clock, so the profile must be fresh by it (the sim's clock is in 2025).
    for manifest in configmaps_for([flat_profile(name="web", replicas=6, generated_at=time.time())],
                                   namespace="aihpa", shards=1):
        await kube.request("POST", "/api/v1/namespaces/aihpa/configmaps", body=manifest)
    await generate_files(tmp_path / "tls")
    await create_shipped_configuration(kube)
    assert await run_cli("certs", "inject-ca-bundle", "--name", "aihpa-webhook", "--ca-file",
                         str(tmp_path / "tls" / "ca.crt"), "--kubeconfig", str(sim_kubeconfig)) == 0  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "webhook", "--host", "127.0.0.1", "--port", "0",
        "--cert-dir", str(tmp_path / "tls"), "--profiles-configmaps", "aihpa", "--kubeconfig", str(sim_kubeconfig),
        "--model-version", "cli-e2e",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            line = (await proc.stderr.readline()).decode()
        assert "serving https://127.0.0.1:" in line, line
        port = int(line.split()[-1].rsplit(":", 1)[1].split("/", 1)[0])
        sim_cluster.register_service("aihpa", "aihpa-webhook", "127.0.0.1", port)
        # The webhook serves before its first list of profiles; dry-run creates show when the forecast arrives.
        manifest = deployment_manifest("web", namespace="shop", replicas=2, labels=ENABLED)
        path = "/apis/apps/v1/namespaces/shop/deployments"
        async with asyncio.timeout(30):
            while True:
                dry = await kube.request("POST", path, params={"dryRun": "All"}, body=manifest)
                if dry["spec"]["replicas"] == 6:
                    break
                await asyncio.sleep(0.05)
        created = await kube.request("POST", path, body=manifest)
        assert created["spec"]["replicas"] == 6
        assert created["metadata"]["annotations"]["aihpa/model-version"] == MODEL  # the profile's model
        assert json.loads(created["metadata"]["annotations"]["aihpa/initial-forecast"])["profile"] == "shop/web"
        validate_deployment(created)
        proc.terminate()
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim_cluster.admission.close()
    await sim_cluster.quiesce()


async def test_injecting_gives_up_with_a_conflict_when_every_write_loses_a_race(
    sim_cluster: Cluster, kube: KubeClient, tmp_path: Path
) -> None:
    ca_pem = await generate_files(tmp_path / "tls")
    await create_shipped_configuration(kube)
    fault = sim_cluster.faults.add(Fault(verb="update", resource="mutatingwebhookconfigurations", status=409))
    with pytest.raises(ConflictError, match="gave up after 3 attempts"):
        await inject_ca_bundle_live(kube, name="aihpa-webhook", ca_pem=ca_pem, attempts=3)
    assert fault.fired == 3


async def test_a_secret_of_another_type_is_not_overwritten(sim_cluster: Cluster, kube: KubeClient) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    await kube.request("POST", SECRETS, body={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aihpa-webhook-tls"}, "type": "Opaque",
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    })  # fmt: skip
    _, serving = generate(service="aihpa-webhook", namespace="aihpa", now=time.time())
    with pytest.raises(ValueError, match="exists with type 'Opaque'"):
        await apply_secret(kube, tls_secret(serving, name="aihpa-webhook-tls", namespace="aihpa"))
    stored = await kube.get(f"{SECRETS}/aihpa-webhook-tls")
    assert set(stored["data"]) == {"password"}
