"""The offline quick start's controller, as a user runs it: its log is JSON lines from its first, JAX's backend probe
is not among them, and its first decision about the simulated Deployment is one line with its fields."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from aihpa.forecast.cli import embedded_trace_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _stop(proc: asyncio.subprocess.Process) -> bytes:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, stderr = await proc.communicate()
    return stderr or b""


@pytest.mark.slow
async def test_the_controller_logs_json_decisions_and_no_jax_probe(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "sim.kubeconfig"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aihpa", "sim", "serve", "--kubeconfig-out", str(kubeconfig), "--trace",
        str(embedded_trace_path()), "--deployment", "web", "--speed", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    controller: asyncio.subprocess.Process | None = None
    lines: list[dict[str, Any]] = []
    try:
        assert sim.stdout is not None
        async with asyncio.timeout(60):
            assert (await sim.stdout.readline()).startswith(b"serving ")
        controller = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aihpa", "controller", "--kubeconfig", str(kubeconfig), "--port",
            str(_free_port()), "--host", "127.0.0.1", "--sync-period", "1",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert controller.stderr is not None
        # the shipped model loads first (tens of seconds on a busy machine), then the first cycle decides
        async with asyncio.timeout(240):
            while not any(line.get("message", "").startswith("decision default/web:") for line in lines):
                raw = await controller.stderr.readline()
                assert raw, "the controller stopped: " + json.dumps(lines[-5:])
                lines.append(json.loads(raw))  # every line is one JSON object
    finally:
        if controller is not None:
            await _stop(controller)
        await _stop(sim)
    assert lines[0]["logger"].startswith("aihpa"), lines[0]
    noise = [line for line in lines if line["logger"].startswith("jax") or "backend" in line["message"]]
    assert noise == []
    decision = lines[-1]
    assert decision["level"] == "info" and decision["workload"] == "default/web"
    assert isinstance(decision["current"], int) and isinstance(decision["desired"], int)
    assert decision["kind"] and decision["reason"] and decision["mode"] == "predictive"
