"""Read and write a Deployment's replicas through its `scale` subresource, with conflict retry.

`update_scale` reads /scale, asks the caller what the replicas should be given what it sees, and writes with the
resourceVersion it read: if someone else changed the Deployment meanwhile (409), it reads again and asks again, so
a decision is never applied to a state it was not made for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import ConflictError

__all__ = ["ScaleResult", "deployment_scale_path", "read_scale", "update_scale"]


def deployment_scale_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"


@dataclass(frozen=True)
class ScaleResult:
    before: int
    after: int
    changed: bool
    attempts: int


async def read_scale(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    scale: dict[str, Any] = await client.get(deployment_scale_path(namespace, name))
    return scale


async def update_scale(
    client: KubeClient,
    *,
    namespace: str,
    name: str,
    decide: Callable[[dict[str, Any]], int | None],
    attempts: int = 3,
) -> ScaleResult:
    """Set spec.replicas to `decide(scale)` (None = leave it). Raises ConflictError after `attempts` conflicts."""
    path = deployment_scale_path(namespace, name)
    for attempt in range(1, attempts + 1):
        scale = await read_scale(client, namespace, name)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        desired = decide(scale)
        if desired is None or desired == current:
            return ScaleResult(before=current, after=current, changed=False, attempts=attempt)
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": (scale.get("metadata") or {}).get("resourceVersion"),
            },
            "spec": {"replicas": int(desired)},
        }
        try:
            await client.request("PUT", path, body=body)
        except ConflictError:
            if attempt == attempts:
                raise
            continue
        return ScaleResult(before=current, after=int(desired), changed=True, attempts=attempt)
    raise AssertionError("unreachable")  # pragma: no cover
