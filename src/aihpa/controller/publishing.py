"""What the controller keeps beyond one cycle: replica profiles published for the webhook, and the history file.

Profiles are each workload's decided replicas by 15-minute slot of the day, written (leader only) into sharded
ConfigMaps in the controller's namespace, where the webhook reads its initial forecast. A sharded controller's shard
writes its own set of ConfigMaps, with its own workloads. The history is saved to a
file (e.g. on a PVC) atomically and restored on start. A failure here is logged, never raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from aihpa.controller.workload import PROFILE_SLOT_S, Workload
from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import K8sError, NotFoundError
from aihpa.metrics.history import History
from aihpa.observability import ControllerMetrics
from aihpa.profiles import ReplicaProfile, configmaps_for

__all__ = ["profiles", "publish_profiles", "restore_history", "save_history"]

logger = logging.getLogger(__name__)


def profiles(workloads: Iterable[Workload], *, model_version: str, now: float) -> list[ReplicaProfile]:
    """Each workload's replicas by 15-minute slot of the day; unseen slots take the nearest seen one before."""
    out = []
    for w in workloads:
        seen = [r for r in w.profile if r >= 0]
        if not seen:
            continue
        slots = list(w.profile)
        last = next((r for r in reversed(slots) if r >= 0), seen[0])
        for i, r in enumerate(slots):
            if r < 0:
                slots[i] = last
            else:
                last = r
        labels = (w.obj.get("metadata") or {}).get("labels") or {}
        out.append(ReplicaProfile(
            namespace=w.ref.namespace, name=w.ref.name, replicas=tuple(slots),
            model_version=model_version, slot_s=PROFILE_SLOT_S,
            app=labels.get("app.kubernetes.io/name") or labels.get("app"), generated_at=now,
        ))
    return out


async def publish_profiles(
    client: KubeClient, items: list[ReplicaProfile], *, namespace: str, shards: int, metrics: ControllerMetrics,
    writer: tuple[int, int] | None = None,
) -> int:
    """Write the profiles into sharded ConfigMaps in `namespace`; returns how many ConfigMaps were written.

    `writer` = (s, N): a sharded controller's shard, which writes its own ConfigMaps (`aihpa.profiles.configmap_name`)
    holding its own workloads only; the webhook merges all of them."""
    written = 0
    for cm in configmaps_for(items, namespace=namespace, shards=shards, writer=writer):
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        name = cm["metadata"]["name"]
        try:
            try:
                await client.request("PUT", f"{path}/{name}", body=cm)
            except NotFoundError:
                await client.request("POST", path, body=cm)
            written += 1
        except K8sError as exc:
            logger.warning("profiles %s not published: %s", name, exc)
            metrics.errors.labels(kind="publish").inc()
    return written


def save_history(history: History, path: Path) -> None:
    """Write the history to `path` atomically (a temporary file, then a rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(history.snapshot()))
        tmp.replace(path)
    except OSError as exc:
        logger.warning("history not saved to %s: %s", path, exc)


def restore_history(path: Path, *, capacity: int) -> History | None:
    """The history saved at `path`, or None when there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        return History.restore(json.loads(path.read_text()), capacity=capacity)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("history at %s not restored: %s", path, exc)
        return None
