"""`aihpa sim serve`: flags are checked, and the running server writes a kubeconfig kubectl uses unchanged."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

import aihpa.cli
from aihpa.cli import main
from aihpa.sim.testing import kubectl_binary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--column", "cpu"], "--column needs --trace"),
        (["--speed", "0"], "--speed must be positive"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--trace", "does-not-exist.csv"], "no such file"),
        (["--deployment", "web"], "--deployment needs --trace"),
        (["--pod-capacity", "-1"], "--pod-capacity must be at least 0"),
    ],
)
def test_bad_flags_are_one_line_user_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aihpa.cli, "COMMAND_MODULES", ("aihpa.sim.cli",))  # this area's commands only
    assert main(["sim", "serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
async def test_serve_writes_a_kubeconfig_that_kubectl_uses_and_stops_on_sigterm(
    tmp_path: Path, shared_traces: Path
) -> None:
    kubectl = kubectl_binary()
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aihpa.cli", "sim", "serve", "--tls", "--kubeconfig-out", str(kubeconfig),
        "--trace", str(shared_traces / "google2019_cluster_cpu_5min.csv"), "--column", "avg_cpu",
        "--deployment", "web", "--speed", "60", "--startup-seconds", "1", "--duration", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 30)
        assert line.decode().startswith("serving https://127.0.0.1:"), line
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
        get = await asyncio.create_subprocess_exec(
            kubectl, "get", "deployment", "web", "-o", "jsonpath={.metadata.annotations}", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(get.communicate(), 30)
        assert get.returncode == 0, err.decode()
        assert "google2019-cluster-cpu-5min" in out.decode()
        raw = await asyncio.create_subprocess_exec(
            kubectl, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(raw.communicate(), 30)
        assert raw.returncode == 0, err.decode()
        assert b"PodMetricsList" in out
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), 30)
    assert code == 0
