"""A real Prometheus server on 127.0.0.1, started per test session, with cAdvisor-style CPU counters backfilled.

The data is written as OpenMetrics and turned into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`,
exactly as an operator would backfill, then Prometheus (Debian package `prometheus`) serves it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STEP = 15  # seconds between counter samples, as a kubelet scrape
# (namespace, pod, cores used): the `web` Deployment has two pods; `web-api` is another Deployment whose pod names
# also start with "web-", which a correct query must not count.
PODS = [
    ("shop", "web-5d9f7c6b8-abcde", 0.5),
    ("shop", "web-5d9f7c6b8-fghij", 1.25),
    ("shop", "web-api-7f8c9d6b5-xyz12", 3.0),
    ("other", "web-5d9f7c6b8-zzzzz", 7.0),
]


@dataclass(frozen=True)
class PromServer:
    url: str
    start: float  # first sample
    end: float  # last sample


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openmetrics(start: int, end: int) -> str:
    lines = ["# TYPE container_cpu_usage_seconds_total counter"]
    for ns, pod, cores in PODS:
        for t in range(start, end + 1, STEP):
            value = cores * (t - start)
            lines.append(
                f'container_cpu_usage_seconds_total{{namespace="{ns}",pod="{pod}",container="app"}} {value} {t}'
            )
        # the pause container: must be excluded by container!="POD"
        for t in range(start, end + 1, STEP):
            lines.append(
                f'container_cpu_usage_seconds_total{{namespace="{ns}",pod="{pod}",container="POD"}} {t - start} {t}'
            )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not binary or not promtool:
        pytest.fail("Prometheus is not installed: `apt-get install prometheus` (.ci/run does this)")
    root = tmp_path_factory.mktemp("prometheus")
    end = (int(time.time()) // 3600) * 3600 - 3600  # whole hours in the past: complete blocks, within retention
    start = end - 2 * 3600
    (root / "data.om").write_text(_openmetrics(start, end))
    data = root / "tsdb"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(data)],
        check=True, capture_output=True, timeout=120,
    )
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = _free_port()
    log = (root / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, root / "prometheus.log")
        yield PromServer(url=url, start=float(start), end=float(end))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll /-/ready: at most 200 tries over at most 60 s, failing early if the process exits."""
    deadline = time.monotonic() + 60
    for _ in range(200):
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    pytest.fail(f"prometheus did not become ready:\n{log.read_text()[-2000:]}")
