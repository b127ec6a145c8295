"""Read and write a Deployment's replicas through its `scale` subresource, with conflict retry.

`update_scale` reads /scale, asks the caller what the replicas should be given what it sees, and writes a JSON patch
that first tests that spec.replicas is still the count it read, then replaces it. If someone else changed the count
meanwhile (the test fails: 422, or a 409), it reads again and asks again, so a decision is never applied to a count
it was not made for. Unlike a write conditioned on the resourceVersion, the deployment controller's frequent status
updates cannot make it fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aihpa.k8s.client import JSON_PATCH, KubeClient
from aihpa.k8s.errors import ConflictError, PermanentError

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
    expected: int | None = None,
) -> ScaleResult:
    """Set spec.replicas to `decide(scale)` (None = leave it). Raises ConflictError after `attempts` conflicts.

    `expected`: the count the caller already knows (e.g. from a watch cache); the first attempt then skips the read
    and tests that count instead, so a fresh cache costs one request, and a stale one a re-read.
    """
    path = deployment_scale_path(namespace, name)
    for attempt in range(1, attempts + 1):
        scale: dict[str, Any]
        if attempt == 1 and expected is not None:
            scale = {"metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": expected}}
        else:
            scale = await read_scale(client, namespace, name)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        desired = decide(scale)
        if desired is None or desired == current:
            return ScaleResult(before=current, after=current, changed=False, attempts=attempt)
        body = [
            {"op": "test", "path": "/spec/replicas", "value": current},
            {"op": "replace", "path": "/spec/replicas", "value": int(desired)},
        ]
        try:
            await client.request("PATCH", path, body=body, content_type=JSON_PATCH)
        except (ConflictError, PermanentError) as exc:
            lost_race = isinstance(exc, ConflictError) or exc.status == 422
            if not lost_race:
                raise
            if attempt == attempts:
                raise ConflictError(f"{namespace}/{name}: replicas kept changing under us: {exc}") from exc
            continue
        return ScaleResult(before=current, after=int(desired), changed=True, attempts=attempt)
    raise AssertionError("unreachable")  # pragma: no cover
