"""Malformed objects are refused with 4xx Status errors: no request can make the sim fail internally."""

from __future__ import annotations

import copy
import random
from typing import Any

from aihpa.sim import ApiError, Cluster
from aihpa.sim.testing import deployment_manifest

_JUNK: list[Any] = [None, 0, -1, 3.5, True, "x", "", [], [1], {}, {"a": 1}, [{"b": None}]]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


async def test_randomly_corrupted_deployments_get_client_errors_only(sim_cluster: Cluster) -> None:
    rng = random.Random(4)
    base = deployment_manifest("web", replicas=2)
    paths = [p for p in _paths(base) if p[:1] != ("apiVersion",) and p[:1] != ("kind",)]
    rt = sim_cluster.api.resolve("apps/v1", "Deployment")
    outcomes: dict[int, int] = {}
    for i in range(300):
        body = _replace(base, rng.choice(paths), rng.choice(_JUNK))
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            body["metadata"]["name"] = f"web-{i}"
        try:
            await sim_cluster.api.create(rt, body, namespace="default")
            outcomes[201] = outcomes.get(201, 0) + 1
        except ApiError as err:
            assert 400 <= err.code < 500, (body, err.status)
            outcomes[err.code] = outcomes.get(err.code, 0) + 1
    assert outcomes.get(422, 0) > 50  # most corruptions are invalid
    assert outcomes.get(201, 0) > 10  # some are harmless (e.g. a label value changed to another string)
    # and the data plane stayed consistent: every stored deployment has its pods
    for dep in sim_cluster.list("apps/v1", "Deployment", "default"):
        pods = sim_cluster.store.dependents(dep["metadata"]["uid"], sim_cluster.api.resolve("v1", "Pod"))
        assert len(pods) == dep["spec"]["replicas"]


async def test_randomly_corrupted_patches_get_client_errors_only(sim_cluster: Cluster) -> None:
    rng = random.Random(5)
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    rt = sim_cluster.api.resolve("apps/v1", "Deployment")
    base = deployment_manifest("web", replicas=2)
    paths = [p for p in _paths(base) if len(p) > 1]
    types = ["application/merge-patch+json", "application/strategic-merge-patch+json"]
    for _ in range(200):
        path = rng.choice(paths)
        patch: Any = _replace({}, (), {})
        node = patch
        for key in path[:-1]:
            if isinstance(key, int):
                break
            node = node.setdefault(key, {})
        else:
            if not isinstance(path[-1], int):
                node[path[-1]] = rng.choice(_JUNK)
        for subresource in (None, "scale"):
            try:
                await sim_cluster.api.patch(rt, patch, patch_type=rng.choice(types), namespace="default",
                                            name="web", subresource=subresource)
            except ApiError as err:
                assert 400 <= err.code < 500, (patch, err.status)
