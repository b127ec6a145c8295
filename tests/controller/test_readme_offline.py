"""The README's offline steps work as written: `aihpa sim serve` then `aihpa controller` on its kubeconfig gets the
controller its Lease and a scale; a controller whose namespace is missing stops at once and names the fix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from aihpa.clock import SystemClock
from aihpa.k8s import KubeClient, WatchSettings, api_client, watch_objects
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import TEST_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Offline: try it on the simulated cluster"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _readme_commands() -> list[list[str]]:
    """The shell blocks of the README's offline section, split as a shell would."""
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [shlex.split(block) for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def _as_process(command: list[str], *, kubeconfig_name: str, kubeconfig: Path) -> list[str]:
    # `aihpa` is this interpreter's entry point; only the kubeconfig moves to a temporary directory
    assert command[0] == "aihpa"
    return [sys.executable, "-m", "aihpa.cli", *(str(kubeconfig) if a == kubeconfig_name else a for a in command[1:])]


async def _stop(proc: asyncio.subprocess.Process) -> bytes:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, stderr = await proc.communicate()
    return stderr


def test_the_readme_gives_the_two_offline_commands() -> None:
    sim, controller = _readme_commands()
    assert sim[:3] == ["aihpa", "sim", "serve"] and "--deployment" in sim
    assert controller[:2] == ["aihpa", "controller"]
    assert controller[controller.index("--kubeconfig") + 1] == sim[sim.index("--kubeconfig-out") + 1]


@pytest.mark.slow
async def test_the_readme_offline_steps_give_the_controller_its_lease_and_a_scale(tmp_path: Path) -> None:
    sim_command, controller_command = _readme_commands()
    name = sim_command[sim_command.index("--kubeconfig-out") + 1]
    kubeconfig = tmp_path / name
    sim = await asyncio.create_subprocess_exec(
        *_as_process(sim_command, kubeconfig_name=name, kubeconfig=kubeconfig), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
    controller: asyncio.subprocess.Process | None = None
    try:
        assert sim.stdout is not None
        async with asyncio.timeout(60):
            serving = (await sim.stdout.readline()).decode()  # printed once the kubeconfig is written
        assert serving.startswith("serving "), serving
        # the README's command, on a free port of the loopback (8080 may be taken where the tests run)
        controller = await asyncio.create_subprocess_exec(
            *_as_process(controller_command, kubeconfig_name=name, kubeconfig=kubeconfig),
            "--port", str(_free_port()), "--host", "127.0.0.1", "--identity", "readme",
            cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ})
        api = await api_client(kubeconfig=str(kubeconfig))
        async with api:
            kube = KubeClient(api)
            replicas: list[int] = []
            events = watch_objects(kube, "/apis/apps/v1/namespaces/default/deployments",
                                   settings=WatchSettings(timeout_seconds=30, inactivity_timeout=60.0))
            # the shipped model loads first (tens of seconds on a busy machine), then the first cycles scale
            async with contextlib.aclosing(events), asyncio.timeout(240):
                async for event in events:
                    objects: tuple[dict[str, Any], ...] = event.items if event.type == "SYNC" else (event.object,)
                    webs = [o for o in objects if o["metadata"]["name"] == "web"]
                    replicas += [o["spec"]["replicas"] for o in webs]
                    # scaled, and the decision explained (a scale between model steps comes before its status)
                    if webs and replicas[-1] > 2 and "aihpa/status" in webs[-1]["metadata"].get("annotations", {}):
                        break
            lease = await kube.get("/apis/coordination.k8s.io/v1/namespaces/aihpa/leases/aihpa-controller")
            assert lease["spec"]["holderIdentity"] == "readme"
            web = await kube.get("/apis/apps/v1/namespaces/default/deployments/web")
            status = json.loads(web["metadata"]["annotations"]["aihpa/status"])
            assert status["replicas"] > 2 and status["reason"]
    finally:
        controller_log = await _stop(controller) if controller is not None else b""
        await _stop(sim)
    assert controller is not None and controller.returncode == 0, controller_log.decode()[-2000:]
    assert b"not found" not in controller_log, controller_log.decode()[-2000:]


async def test_a_controller_whose_namespace_is_missing_stops_once_and_names_the_fix(tmp_path: Path) -> None:
    async with Cluster(clock=SystemClock(), startup_delay=0.0, settings=TEST_SETTINGS) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aihpa.cli", "controller", "--kubeconfig", str(kubeconfig),
            "--namespace", "aihpa-missing", "--port", str(_free_port()), "--host", "127.0.0.1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
        async with asyncio.timeout(120):
            _, stderr = await proc.communicate()
        assert proc.returncode == 2, stderr.decode()[-2000:]
        assert stderr.decode().strip().splitlines()[-1] == (
            "aihpa controller: error: namespace 'aihpa-missing' not found: "
            "create it with `kubectl create namespace aihpa-missing` or pass --namespace")
        assert cluster.list("coordination.k8s.io/v1", "Lease") == []
