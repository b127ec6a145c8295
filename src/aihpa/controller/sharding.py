"""Sharded controllers: which workloads a replica owns, the Lease it competes for, and the fence on each actuation.

A workload belongs to shard `shard_of(namespace, name, N)`: the first 8 bytes of SHA-256 over "namespace/name",
mod N (the kube-state-metrics / Prometheus hashmod pattern). Not Python's `hash()`: it is salted per process, and
every replica, whatever its start, must agree on the owner of a workload.

**Assignment is fixed.** A replica serves one shard, given at start (`aihpa controller --shards N --shard i`; the
chart renders one Deployment per shard, two replicas each). The replicas of a shard compete for that shard's Lease
(`lease_name`): one acts, the other keeps a warm cache and history of the same workloads and takes the Lease over when
the holder stops renewing, within `lease_s + retry_s` (15 + 2 s with client-go's timings). Fixed is simpler than
replicas bidding for many Leases and gives the cache a predicate that never changes at run time. With N = 1 the Lease
is the one-controller Lease of old (`aihpa-controller`), so an upgrade never has two leaders on two names.

**The fence.** A Lease alone cannot stop every double actuation: a holder killed mid-cycle leaves a step half done
for the taker, a holder that stalls may have a write in flight when its Lease runs out, and when N changes a workload
moves to a shard whose Lease is another object altogether. So each actuation also carries its own record on the
Deployment, the annotation `aihpa/actuated-step` = "<model step>/<holder identity>", written in the same request as
the new replica count and conditioned on what was read (`fenced_scale`): a JSON patch that tests the count and the
previous record (or, for the first record, the resourceVersion), so a lost race is a failed test, never a silent
overwrite. A replica writes only when the record is of an earlier step, or of this step by itself (`may_actuate`):
a workload is therefore actuated by at most one replica per model step, by construction, across kills, stalls and
changes of N. The record costs no extra request; it rides on the scale write.

Composition layer: Kubernetes I/O through `KubeClient` only, no wall clock (the step is given).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aihpa.annotations import ANNOTATION_ACTUATED
from aihpa.controller.actuation import Actuator
from aihpa.controller.outbox import EventOutbox
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import Workload
from aihpa.k8s.client import JSON_PATCH, KubeClient
from aihpa.k8s.errors import ConflictError, K8sError, NotFoundError, PermanentError
from aihpa.observability import ControllerMetrics
from aihpa.scaling import Decision

__all__ = [
    "ANNOTATION_ACTUATED",
    "FenceResult",
    "FencedActuator",
    "ShardAssignment",
    "StepRecord",
    "fenced_scale",
    "lease_name",
    "may_actuate",
    "shard_of",
]

logger = logging.getLogger(__name__)

#: The per-workload record of the last model step actuated, and by whom ("<step>/<identity>").
_ANNOTATION_POINTER: Final = "/metadata/annotations/" + ANNOTATION_ACTUATED.replace("~", "~0").replace("/", "~1")


def _check(shards: int, shard: int | None = None) -> None:
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a whole number >= 1, got {shards!r}")
    if shard is not None and (isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < shards):
        raise ValueError(f"shard must be in 0..{shards - 1}, got {shard!r}")


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard (0..shards-1) that owns the workload `namespace/name`: stable across processes and restarts."""
    _check(shards)
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def lease_name(base: str, *, shard: int, shards: int) -> str:
    """The Lease of shard `shard` of `shards`: `base` itself when there is one shard (the Lease of an unsharded
    controller, so an upgrade to this version keeps one leader), else `<base>-shard-<i>-of-<N>`. N is in the name:
    after a change of N the new shards start on fresh Leases instead of inheriting a holder that serves other
    workloads; the fence keeps the overlap safe."""
    _check(shards, shard)
    return base if shards == 1 else f"{base}-shard-{shard}-of-{shards}"


@dataclass(frozen=True)
class ShardAssignment:
    """The shard this replica serves, fixed for its life; `owns` is the cache's predicate."""

    shard: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        _check(self.shards, self.shard)

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    def owns(self, namespace: str, name: str) -> bool:
        """Whether the workload `namespace/name` is this shard's."""
        return self.shards == 1 or shard_of(namespace, name, self.shards) == self.shard

    def lease_name(self, base: str) -> str:
        return lease_name(base, shard=self.shard, shards=self.shards)

    def __str__(self) -> str:
        return f"{self.shard}-of-{self.shards}"


# ---- the fence ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRecord:
    """What `aihpa/actuated-step` says: the model step last actuated and the replica that did it."""

    step: int
    holder: str

    def render(self) -> str:
        return f"{self.step}/{self.holder}"

    @classmethod
    def parse(cls, text: object) -> StepRecord | None:
        """The record, or None for an absent or unreadable one (which then fences nothing: no step is recorded)."""
        if not isinstance(text, str):
            return None
        step, sep, holder = text.partition("/")
        try:
            value = int(step)
        except ValueError:
            return None
        return cls(step=value, holder=holder) if sep and holder else None


def may_actuate(record: StepRecord | None, *, step: int, identity: str) -> bool:
    """Whether `identity` may scale a workload at model `step` given its record: not when another replica already
    did at this step, nor when any replica did at a later one (a clock behind the others must not undo them)."""
    if record is None or record.step < step:
        return True
    return record.step == step and record.holder == identity


@dataclass(frozen=True)
class FenceResult:
    before: int
    after: int
    changed: bool
    # the record held another replica's claim on this step (or a later one): nothing was written
    fenced: bool
    attempts: int


def _annotations(obj: dict[str, Any]) -> dict[str, Any] | None:
    found = (obj.get("metadata") or {}).get("annotations")
    return found if isinstance(found, dict) else None


async def fenced_scale(
    client: KubeClient,
    *,
    namespace: str,
    name: str,
    desired: int,
    step: int,
    identity: str,
    known: dict[str, Any] | None = None,
    attempts: int = 3,
) -> FenceResult:
    """Set the Deployment's replicas to `desired` together with the record of `step`, unless another replica holds
    this step (or a later one). `known`: the Deployment as the watch cache has it, tried first to save a read.

    One JSON patch on the Deployment: `test` the count read and the record read (or the resourceVersion when there
    is no record yet, since a JSON patch cannot test for absence), then write both. A failed test (422) or a 409
    means another writer came first: read again and judge again. Raises ConflictError after `attempts` lost races.
    """
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    for attempt in range(1, attempts + 1):
        obj: dict[str, Any] = known if attempt == 1 and known is not None else await client.get(path)
        current = int((obj.get("spec") or {}).get("replicas") or 0)
        annotations = _annotations(obj)
        raw = None if annotations is None else annotations.get(ANNOTATION_ACTUATED)
        record = StepRecord.parse(raw)
        if not may_actuate(record, step=step, identity=identity):
            return FenceResult(before=current, after=current, changed=False, fenced=True, attempts=attempt)
        if desired == current:
            return FenceResult(before=current, after=current, changed=False, fenced=False, attempts=attempt)
        claim = StepRecord(step=step, holder=identity).render()
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/spec/replicas", "value": current}]
        if isinstance(raw, str):
            ops.append({"op": "test", "path": _ANNOTATION_POINTER, "value": raw})
        else:
            ops.append({"op": "test", "path": "/metadata/resourceVersion",
                        "value": (obj.get("metadata") or {}).get("resourceVersion")})
        if annotations is None:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_ACTUATED: claim}})
        else:
            ops.append({"op": "add", "path": _ANNOTATION_POINTER, "value": claim})
        ops.append({"op": "replace", "path": "/spec/replicas", "value": int(desired)})
        try:
            await client.request("PATCH", path, body=ops, content_type=JSON_PATCH)
        except (ConflictError, PermanentError) as exc:
            if not (isinstance(exc, ConflictError) or exc.status == 422):
                raise
            if attempt == attempts:
                raise ConflictError(f"{namespace}/{name}: the count or its step record kept changing: {exc}") from exc
            continue
        return FenceResult(before=current, after=int(desired), changed=True, fenced=False, attempts=attempt)
    raise AssertionError("unreachable")  # pragma: no cover


class FencedActuator(Actuator):
    """The Actuator of a sharded controller: every scale write carries the step record (`fenced_scale`), and none
    is sent once the replica can no longer prove it holds its shard's Lease (`holds()`, checked before each write,
    so a cycle that outlives the Lease stops mid-way instead of finishing on a Lease someone else may hold).

    `step` is the model step of the cycle being actuated, set by the controller before it actuates.
    """

    def __init__(
        self,
        client: KubeClient,
        *,
        settings: ControllerSettings,
        metrics: ControllerMetrics,
        outbox: EventOutbox,
        holds: Callable[[], bool],
    ) -> None:
        super().__init__(client, settings=settings, metrics=metrics, outbox=outbox)
        self.holds = holds
        self.step = 0
        #: scale writes refused because another replica had actuated the workload at this step (a test seam too)
        self.fenced = 0

    async def _apply(self, w: Workload, decision: Decision, *, current: int) -> bool:
        if not self.holds():
            logger.info("%s: not scaled to %d: the shard's Lease is no longer held", w.key, decision.replicas)
            return False
        try:
            result = await fenced_scale(self.client, namespace=w.ref.namespace, name=w.ref.name,
                                        desired=decision.replicas, step=self.step, identity=self.settings.identity,
                                        known=w.obj if _replicas(w.obj) == current else None)
        except NotFoundError:
            return False
        except K8sError as exc:
            logger.warning("%s: scale to %d failed: %s", w.key, decision.replicas, exc)
            self.metrics.errors.labels(kind="scale").inc()
            return False
        if result.fenced:
            self.fenced += 1
            logger.info("%s: not scaled to %d: another replica already scaled it at model step %d", w.key,
                        decision.replicas, self.step)
            return False
        if not result.changed:
            return False
        (w.obj.setdefault("spec", {}))["replicas"] = result.after
        self.metrics.scalings.labels(direction="up" if result.after > result.before else "down").inc()
        self.outbox.about(w, "Normal", "Scaled", f"{result.before} -> {result.after}: {decision.reason}")
        return True


def _replicas(obj: dict[str, Any]) -> int | None:
    value = (obj.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) else None
