"""`aihpa controller` as a process against the simulated cluster: it runs, degrades loudly, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from aihpa.clock import SystemClock
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import TEST_SETTINGS, deployment_manifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(predicate: object, *, timeout_s: float = 20.0, poll_s: float = 0.1) -> None:
    """Poll a condition on another process's effects, bounded in time and count."""
    async with asyncio.timeout(timeout_s):
        for _ in range(int(timeout_s / poll_s) + 1):
            if predicate():  # type: ignore[operator]
                return
            await asyncio.sleep(poll_s)
    raise AssertionError("condition not met")


@pytest.mark.slow
async def test_a_model_that_fails_to_load_leaves_it_scaling_reactively_and_sigterm_releases_the_lease(
    tmp_path: Path,
) -> None:
    async with Cluster(clock=SystemClock(), startup_delay=0.0, settings=TEST_SETTINGS) as cluster:
        await cluster.ensure_namespace("aihpa")
        await cluster.create(deployment_manifest(
            "web", replicas=1, cpu_request="500m", cpu_limit="1", labels={"aihpa/enabled": "true"},
            annotations={"sim.aihpa.io/demand-cores": "2.0"},
        ))
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aihpa.cli", "controller", "--kubeconfig", str(kubeconfig),
            "--model", str(tmp_path / "no-such-model"), "--port", str(port), "--host", "127.0.0.1",
            "--sync-period", "0.5", "--identity", "proc-1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
        )
        try:
            # metrics need a pod that reports: 2 cores on one 1-core pod saturates it, so the HPA doubles it
            def scaled_and_explained() -> bool:
                dep = cluster.get("apps/v1", "Deployment", "web", "default") or {}
                annotations = dep.get("metadata", {}).get("annotations") or {}
                return dep.get("spec", {}).get("replicas", 1) > 1 and "aihpa/status" in annotations

            await _until(scaled_and_explained)
            dep = cluster.get("apps/v1", "Deployment", "web", "default")
            assert dep is not None
            status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
            assert status["model"] == "unavailable" and "fallback" in status["reason"]
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    assert 'aihpa_model_info{version="unavailable"} 1.0' in await resp.text()
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    assert resp.status == 200
            lease = cluster.get("coordination.k8s.io/v1", "Lease", "aihpa-controller", "aihpa")
            assert lease is not None and lease["spec"]["holderIdentity"] == "proc-1"
        finally:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr.decode()[-2000:]
        logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
        assert any(r["level"] == "error" and "REACTIVE ONLY" in r["message"] for r in logs)
        lease = cluster.get("coordination.k8s.io/v1", "Lease", "aihpa-controller", "aihpa")
        assert lease is not None and not lease["spec"].get("holderIdentity")
