"""Beside an existing HorizontalPodAutoscaler: aihpa raises the HPA's floor ahead of load instead of scaling itself.

A Deployment labeled for aihpa that an HPA also targets is left alone by default (a `HPAConflict` Warning Event):
changing somebody's HPA unasked would fight whatever manages it (a GitOps tool would revert `minReplicas` every sync,
and the two would flap). With `aihpa/with-hpa: floor` the workload opts in: at each model step aihpa sets the HPA's
`spec.minReplicas` to its own predictive count, clamped to [the user's own minimum, the HPA's maximum], and the HPA
stays in charge of reactive scaling (it never scales below a floor, and adds pods when its metric asks). The user's
minimum is kept in the HPA's annotation `aihpa/original-min-replicas` the first time aihpa changes it, and written
back (the annotation removed) when the workload stops coexisting: the label or the annotation goes away, the HPA
stops targeting it, or the controller shuts down (`restore_all`).

I/O only through the `KubeClient`; the count itself comes from the predictive policy (`aihpa.scaling`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aihpa.annotations import ANNOTATION_ORIGINAL_MIN_REPLICAS
from aihpa.k8s.client import MERGE_PATCH, KubeClient
from aihpa.k8s.errors import K8sError

__all__ = ["FloorResult", "restore_all", "restore_stale", "set_floor", "target_of"]

logger = logging.getLogger(__name__)

_HPAS = "/apis/autoscaling/v2/horizontalpodautoscalers"


def _hpas_path(namespace: str | None) -> str:
    return f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers" if namespace else _HPAS


def target_of(hpa: dict[str, Any]) -> str | None:
    """The "namespace/name" of the Deployment an HPA scales, or None when it scales something else."""
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    if ref.get("kind") != "Deployment":
        return None
    return f"{(hpa.get('metadata') or {}).get('namespace')}/{ref.get('name')}"


def _original(hpa: dict[str, Any]) -> int | None:
    raw = ((hpa.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_ORIGINAL_MIN_REPLICAS)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class FloorResult:
    """What `set_floor` did: the HPA's name, its minReplicas before and after, and the bounds it was clamped to."""

    hpa: str
    before: int
    after: int
    user_min: int
    max_replicas: int

    @property
    def changed(self) -> bool:
        return self.before != self.after


async def set_floor(client: KubeClient, *, namespace: str, name: str, floor: int) -> FloorResult | None:
    """Set the `minReplicas` of the HPA that targets Deployment namespace/name to `floor`, clamped to [the user's own
    minimum, the HPA's maximum]; None when no HPA targets it (any more)."""
    listed = await client.get(_hpas_path(namespace))
    hpa = next((h for h in listed.get("items") or () if target_of(h) == f"{namespace}/{name}"), None)
    if hpa is None:
        return None
    spec = hpa.get("spec") or {}
    current = int(spec.get("minReplicas") or 1)
    max_replicas = int(spec.get("maxReplicas") or current)
    original = _original(hpa)
    user_min = current if original is None else original
    after = max(user_min, min(int(floor), max_replicas))
    hpa_name = str((hpa.get("metadata") or {}).get("name"))
    result = FloorResult(hpa=hpa_name, before=current, after=after, user_min=user_min, max_replicas=max_replicas)
    if result.changed or original is None:
        body: dict[str, Any] = {
            "metadata": {
                "annotations": {ANNOTATION_ORIGINAL_MIN_REPLICAS: str(user_min)},
                # guarded by the version read: a concurrent change of the user's is not overwritten
                "resourceVersion": (hpa.get("metadata") or {}).get("resourceVersion"),
            },
            "spec": {"minReplicas": after},
        }
        await client.request("PATCH", f"{_hpas_path(namespace)}/{hpa_name}", body=body, content_type=MERGE_PATCH)
    return result


async def _restore(client: KubeClient, hpa: dict[str, Any]) -> None:
    meta = hpa.get("metadata") or {}
    original = _original(hpa)
    spec: dict[str, Any] = {} if original is None else {"minReplicas": original}
    body = {"metadata": {"annotations": {ANNOTATION_ORIGINAL_MIN_REPLICAS: None},
                         "resourceVersion": meta.get("resourceVersion")}, "spec": spec}
    path = f"{_hpas_path(str(meta.get('namespace')))}/{meta.get('name')}"
    await client.request("PATCH", path, body=body, content_type=MERGE_PATCH)
    logger.info("HPA %s/%s: minReplicas restored to %s (aihpa no longer sets its floor)",
                meta.get("namespace"), meta.get("name"), original)


async def restore_stale(client: KubeClient, *, coexisting: set[str], namespace: str | None = None) -> int:
    """Restore every HPA that carries aihpa's floor annotation but whose target ("namespace/name") no longer coexists
    with aihpa; returns how many were restored. A failure on one is logged; the next call tries again."""
    listed = await client.get(_hpas_path(namespace))
    restored = 0
    for hpa in listed.get("items") or ():
        if _original(hpa) is None:
            continue
        target = target_of(hpa)
        if target in coexisting:
            continue
        try:
            await _restore(client, hpa)
            restored += 1
        except K8sError as exc:
            logger.warning("HPA %s: floor not restored: %s", target, exc)
    return restored


async def restore_all(client: KubeClient, *, namespace: str | None = None) -> int:
    """Restore every HPA whose floor aihpa set (the controller is shutting down)."""
    return await restore_stale(client, coexisting=set(), namespace=namespace)
