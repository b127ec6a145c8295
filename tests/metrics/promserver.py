"""A real Prometheus server on 127.0.0.1 over data written beforehand: for the metrics tests and the controller's.

The data is written as OpenMetrics and turned into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`,
exactly as an operator would backfill, then Prometheus (Debian package `prometheus`) serves it; nothing is scraped.
Any time range works, past or (as the simulated cluster's clock) fixed: instant and range queries name their time.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["gauge_lines", "serve_prometheus"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gauge_lines(name: str, labels: dict[str, str], points: list[tuple[int, float]]) -> list[str]:
    """OpenMetrics sample lines of one series (no TYPE line): `points` are (unix seconds, value)."""
    text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return [f"{name}{{{text}}} {value} {t}" for t, value in points]


@contextmanager
def serve_prometheus(root: Path, openmetrics: str) -> Iterator[str]:
    """Serve `openmetrics` (a whole OpenMetrics text, ending with "# EOF") from a Prometheus under `root`; yields its
    base URL and stops it on exit."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not binary or not promtool:
        pytest.fail("Prometheus is not installed: `apt-get install prometheus` (.ci/run does this)")
    (root / "data.om").write_text(openmetrics)
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
        yield url
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
