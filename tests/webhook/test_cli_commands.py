"""`aihpa certs generate`, `aihpa certs inject-ca-bundle` and `aihpa webhook`, run as a user would."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import kubernetes_validate
import pytest
import yaml

import aihpa.cli
from tests.webhook.conftest import K8S_VERSION, NOW, WEBHOOKS, load_fixture, profile

# Only this area's commands: the tests exercise the real `main` without depending on other areas' modules.
ONLY_WEBHOOK = ("aihpa.webhook.cli",)
SERVE = f"import sys, aihpa.cli as c; c.COMMAND_MODULES = {ONLY_WEBHOOK!r}; sys.exit(c.main())"


def main(argv: list[str]) -> int:
    real = aihpa.cli.COMMAND_MODULES
    aihpa.cli.COMMAND_MODULES = ONLY_WEBHOOK
    try:
        return aihpa.cli.main(argv)
    finally:
        aihpa.cli.COMMAND_MODULES = real


def test_the_aihpa_command_lists_the_webhook_commands() -> None:
    assert "aihpa.webhook.cli" in aihpa.cli.COMMAND_MODULES


def test_certs_generate_writes_the_files_and_a_valid_tls_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tls"
    code = main(
        [
            *("certs", "generate", "--service", "aihpa-webhook", "--namespace", "aihpa", "--out-dir", str(out)),
            *("--secret-out", str(tmp_path / "secret.yaml"), "--ip", "127.0.0.1"),
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    secret = yaml.safe_load((tmp_path / "secret.yaml").read_text())
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    assert base64.b64decode(secret["data"]["tls.crt"]) == (out / "tls.crt").read_bytes()
    assert "aihpa-webhook.aihpa.svc.cluster.local" in capsys.readouterr().out


def test_certs_generate_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["certs", "generate", "--service", "s", "--namespace", "n", "--out-dir", str(tmp_path)]
    assert main(args) == 0
    before = (tmp_path / "tls.crt").read_bytes()
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "tls.crt").read_bytes() == before
    assert main([*args, "--force"]) == 0
    assert (tmp_path / "tls.crt").read_bytes() != before


def test_inject_ca_bundle_writes_a_valid_configuration(tmp_path: Path) -> None:
    assert main(["certs", "generate", "--service", "s", "--namespace", "n", "--out-dir", str(tmp_path)]) == 0
    out = tmp_path / "webhook.yaml"
    config = WEBHOOKS / "mutatingwebhookconfiguration.yaml"
    ca_file = str(tmp_path / "ca.crt")
    assert main(["certs", "inject-ca-bundle", "--config", str(config), "--ca-file", ca_file, "--out", str(out)]) == 0
    injected = yaml.safe_load(out.read_text())
    kubernetes_validate.validate(injected, K8S_VERSION, strict=True)
    assert base64.b64decode(injected["webhooks"][0]["clientConfig"]["caBundle"]) == (tmp_path / "ca.crt").read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["certs", "inject-ca-bundle", "--config", "missing.yaml", "--ca-file", "x"], "missing.yaml does not exist"),
        (["webhook", "--port", "0"], "the webhook serves TLS only"),
        (["webhook", "--cert-dir", "d", "--tls-cert", "c"], "not both"),
        (["webhook", "--self-signed", "--tls-cert", "c", "--tls-key", "k"], "--self-signed needs --cert-dir"),
        (["webhook", "--cert-dir", "nowhere"], "cannot load"),
        (["webhook", "--default-min-replicas", "0", "--cert-dir", "d"], "default replicas need"),
        (["webhook", "--port", "70000", "--cert-dir", "d"], "--port must be"),
    ],
)
def test_input_mistakes_are_one_line_errors_with_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_inject_ca_bundle_refuses_a_file_that_is_not_a_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "ca.crt"
    bogus.write_text("hello")
    config = str(WEBHOOKS / "mutatingwebhookconfiguration.yaml")
    assert main(["certs", "inject-ca-bundle", "--config", config, "--ca-file", str(bogus)]) == 2
    assert "is not a PEM certificate" in capsys.readouterr().err


@pytest.mark.slow
async def test_the_webhook_command_serves_tls_until_sigterm(tmp_path: Path) -> None:
    certs_dir = tmp_path / "tls"
    gen = ["certs", "generate", "--service", "aihpa-webhook", "--namespace", "aihpa", "--out-dir", str(certs_dir)]
    assert main([*gen, "--ip", "127.0.0.1"]) == 0
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"shop.web": profile(generated_at=NOW).to_json()}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "webhook", "--host", "127.0.0.1", "--port", "0",
        "--cert-dir", str(certs_dir), "--profiles", str(profiles), "--model-version", "cli-test",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            line = (await proc.stderr.readline()).decode()
        assert "serving https://127.0.0.1:" in line, line
        url = line.split()[-1].rsplit("/", 1)[0]
        client_ssl = ssl.create_default_context(cafile=str(certs_dir / "ca.crt"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session:
            async with session.get(url + "/readyz") as resp:
                assert resp.status == 200
            async with session.post(url + "/mutate", json=load_fixture("create-labeled")) as resp:
                answer = await resp.json()
        assert answer["response"]["patchType"] == "JSONPatch"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
