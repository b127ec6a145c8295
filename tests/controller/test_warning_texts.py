"""Every Warning Event the controller sends says each thing once: one fallback, no clause repeated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from aihpa.annotations import ParsedPolicy, PolicyDefaults, parse_policy
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig

LABELS = {"aihpa/enabled": "true"}


# the marker is an aihpa/ key: the cache keeps only those of a Deployment's annotations (the slim object)
def _exploding(annotations: Mapping[str, object] | None, *, defaults: PolicyDefaults) -> ParsedPolicy:
    if annotations and "aihpa/test-explode" in annotations:
        raise RuntimeError("injected failure")
    return parse_policy(annotations, defaults=defaults)


async def _deploy(rig: Rig, name: str, *, request: bool = True, **annotations: str) -> None:
    manifest = deployment_manifest(name, replicas=2, labels=LABELS, cpu_request="500m", cpu_limit="1",
                                   annotations={"sim.aihpa.io/demand-cores": "0.8", **annotations})
    if not request:
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            container["resources"] = {}
    await rig.cluster.create(manifest)


def _clauses(message: str) -> list[str]:
    return [c.strip().lower() for c in re.split(r"[;:]", message) if c.strip()]


async def test_each_warning_event_says_each_thing_once(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aihpa.controller.cache.parse_policy", _exploding)
    await _deploy(rig, "bad", **{"aihpa/min-replicas": "1" * 5000, "aihpa/max-replicas": "lots",
                                 "aihpa/mode": "turbo", "aihpa/typo": "1"})
    await _deploy(rig, "inverted", **{"aihpa/min-replicas": "9", "aihpa/max-replicas": "4"})
    await _deploy(rig, "norequest", request=False)
    await _deploy(rig, "broken", **{"aihpa/test-explode": "1"})
    await _deploy(rig, "shared")
    await rig.cluster.create({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "shared", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shared"},
                 "minReplicas": 1, "maxReplicas": 10},
    })
    await rig.controller.wait_until(lambda: {"default/bad", "default/inverted", "default/norequest"}
                                    <= set(rig.controller.workloads) and "default/shared" in rig.controller.hpa_targets)
    await rig.cycles(2)
    warnings: list[dict[str, Any]] = [e for e in rig.cluster.list("v1", "Event", "default") if e["type"] == "Warning"]
    assert {e["reason"] for e in warnings} == {"InvalidAnnotation", "HPAConflict", "NoCPURequest", "HandlingFailed"}
    assert len([e for e in warnings if e["involvedObject"]["name"] == "bad"]) == 4
    for event in warnings:
        clauses = _clauses(event["message"])
        assert len(clauses) == len(set(clauses)), event["message"]
        assert sum(c.startswith("using") for c in clauses) <= 1, event["message"]
