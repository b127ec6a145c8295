"""Server-side tables for `kubectl get`: the usual columns, and a listing never fails on odd objects."""

from __future__ import annotations

import pytest

from aihpa.sim import Cluster
from aihpa.sim.tables import human_duration, to_table


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (119, "119s"), (200, "3m20s"), (600, "10m"), (3 * 3600 + 60, "3h1m"), (20 * 3600, "20h"),
     (3 * 86400 + 3600, "3d1h"), (40 * 86400, "40d")],
)
def test_ages_read_like_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


async def test_tables_print_events_and_hpas_and_survive_odd_objects(sim_cluster: Cluster) -> None:
    now = sim_cluster.clock.now()
    events = sim_cluster.api.resolve("v1", "Event")
    hpa = sim_cluster.api.resolve("autoscaling/v2", "HorizontalPodAutoscaler")
    event = {"metadata": {"name": "e", "creationTimestamp": "2025-01-01T00:00:00Z"}, "type": "Normal",
             "reason": "Scaled", "message": "to 3", "involvedObject": {"kind": "Deployment", "name": "web"},
             "lastTimestamp": "2025-01-01T00:00:00.123456789Z"}
    table = to_table(events, [event], now=1_735_689_660.0, resource_version="1", include_object="Metadata")
    assert table["rows"][0]["cells"][:5] == ["60s", "Normal", "Scaled", "deployment/web", "to 3"]

    odd = {"metadata": {"name": "odd"}, "spec": {"metrics": ["not-an-object"], "scaleTargetRef": 7}}
    table = to_table(hpa, [odd], now=now, resource_version="1", include_object="None")
    assert table["rows"][0]["cells"][0] == "odd"
    assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"])
