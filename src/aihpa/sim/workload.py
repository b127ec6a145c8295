"""The simulated data plane: Deployments own Pods that start after a delay, and Pods consume a demand signal.

Stands in for the deployment controller, the scheduler, the kubelet and metrics-server. A Deployment's demand (CPU
cores as a function of virtual time) comes from a trace or a function attached through the Python API, or named by
the `sim.aihpa.io/trace` annotation. Usage per ready pod is the demand split evenly over the ready pods, capped at the
pod's CPU limit (or request). Pods are owned directly by their Deployment: there are no ReplicaSets.

The cluster holds at most `pod_capacity` scheduled pods: pods beyond it stay Pending, unschedulable, as on a full
cluster, and take the room that frees up first come first served. Pod objects themselves are bounded too (at most
`max_pending_pods` unschedulable ones): a Deployment asking for more gets a ReplicaFailure condition, as under a
quota. Work comes in batches of `batch` pod writes; the rest continues on later loop turns, so a huge scale request
never starves other requests.

It reacts to store events synchronously and reads time only from the injected `Clock`; it must never sleep on the
wall clock or block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import heapq
import json
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from aihpa.clock import Clock
from aihpa.labels import selector_matches
from aihpa.quantity import parse_quantity
from aihpa.sim.errors import ApiError
from aihpa.sim.resources import Registry, ResourceType
from aihpa.sim.store import Event, Store, rfc3339
from aihpa.sim.types import Obj
from aihpa.step import DEFAULT_STEP_S
from aihpa.traces import Trace

__all__ = [
    "DEFAULT_POD_CAPACITY",
    "STARTUP_ANNOTATION",
    "TRACE_ANNOTATION",
    "Demand",
    "TraceDemand",
    "Workloads",
    "format_cpu",
    "parse_cpu",
]

logger = logging.getLogger(__name__)

#: Names a demand registered with `Workloads.register_trace` (or `Cluster.register_trace`).
TRACE_ANNOTATION = "sim.aihpa.io/trace"
#: A constant demand in CPU cores, e.g. "2.5".
DEMAND_ANNOTATION = "sim.aihpa.io/demand-cores"
#: Seconds (virtual) from pod creation to Ready, overriding the cluster default.
STARTUP_ANNOTATION = "sim.aihpa.io/startup-seconds"

#: CPU cores demanded by a whole workload at a virtual time (seconds since the epoch).
Demand = Callable[[float], float]

_NODE = "sim-node-1"

#: Scheduled pods a simulated cluster holds unless told otherwise.
DEFAULT_POD_CAPACITY = 10_000
#: Pod writes (creations, deletions, bindings, starts) done in one go before yielding to the event loop.
DEFAULT_BATCH = 500
_UNSCHEDULABLE_MESSAGE = ("0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No "
                          "preemption victims found for incoming pod.")


class TraceDemand:
    """A trace replayed as demand: sample i at `start + i * step_s`, linearly interpolated, looping at the end.

    `step_s` defaults to the trace's own step, else the model step; `interval_s` is its deprecated name. `scale`
    converts the trace's unit (page views, events, MHz...) into CPU cores.
    """

    def __init__(
        self, trace: Trace, *, scale: float = 1.0, start: float = 0.0, step_s: float | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.trace = trace
        self.scale = float(scale)
        self.start = float(start)
        self.step_s = float(step_s or interval_s or trace.step_s or DEFAULT_STEP_S)
        self._values = np.asarray(trace.values, dtype=np.float64)

    def __call__(self, t: float) -> float:
        n = self._values.shape[0]
        pos = ((t - self.start) / self.step_s) % n
        i = int(pos)
        frac = pos - i
        a = self._values[i]
        b = self._values[(i + 1) % n]
        return max(0.0, float(a + (b - a) * frac) * self.scale)


def parse_cpu(q: Any) -> float:
    """A CPU quantity ("250m", "1", "1500000n") in cores; 0 for anything unparsable (a pod then asks for none)."""
    return _parse_cpu_text(q) if isinstance(q, str) else _cores_or_zero(q)


@functools.lru_cache(maxsize=4096)  # a cluster's pods ask in a few distinct quantities, read for every PodMetrics
def _parse_cpu_text(q: str) -> float:
    return _cores_or_zero(q)


def _cores_or_zero(q: object) -> float:
    try:
        return parse_quantity(q)
    except ValueError:
        return 0.0


def format_cpu(cores: float) -> str:
    """Cores as metrics-server writes them: integer nanocores."""
    return f"{max(0, round(cores * 1e9))}n"


def _template_hash(template: Obj) -> str:
    digest = hashlib.sha1(json.dumps(template, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return "".join(c for c in digest if c not in "aeiou")[:10]


def _suffix(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


@dataclass(frozen=True)
class _Pending:
    ready_at: float
    namespace: str
    name: str
    uid: str


class Workloads:
    """Deployment -> Pod reconciliation, pod start-up on the clock, demand and PodMetrics."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        clock: Clock,
        startup_delay: float = 5.0,
        seed: int = 0,
        pod_capacity: int = DEFAULT_POD_CAPACITY,
        max_pending_pods: int | None = None,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if pod_capacity < 0:
            raise ValueError(f"pod_capacity must be at least 0, got {pod_capacity}")
        if max_pending_pods is not None and max_pending_pods < 0:
            raise ValueError(f"max_pending_pods must be at least 0, got {max_pending_pods}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.store = store
        self.clock = clock
        self.startup_delay = startup_delay
        self.pod_capacity = pod_capacity
        self.max_pending_pods = pod_capacity if max_pending_pods is None else max_pending_pods
        self.batch = batch
        self._deployments = registry.builtin("apps/v1", "Deployment")
        self._pods = registry.builtin("v1", "Pod")
        self._rng = random.Random(seed)
        self._traces: dict[str, Demand] = {}
        self._attached: dict[tuple[str, str], Demand] = {}
        self._pending: list[tuple[float, int, _Pending]] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._run_task: asyncio.Task[Any] | None = None
        self._sleeping_until: float | None = None
        self._poked = False
        self._hashes: dict[int, tuple[Obj, str]] = {}
        self._current: tuple[str, str] | None = None
        self._reconciling = False
        self._dirty: set[tuple[str, str]] = set()
        # the scheduler: uids of pods bound to the node, and of pods waiting for room (in arrival order)
        self._bound: set[str] = set()
        self._waiting: dict[str, tuple[str, str]] = {}
        # Deployments whose reconciliation stopped at a batch's end, and those refused pods for want of room
        self._backlog: dict[tuple[str, str], None] = {}
        self._starved: set[tuple[str, str]] = set()
        self._continuation: asyncio.Handle | None = None
        store.add_listener(self._on_event)

    # ---- demand ----------------------------------------------------------------------------------------------

    def register_trace(self, name: str, demand: Demand) -> None:
        """Make `demand` available to Deployments annotated `sim.aihpa.io/trace: <name>`."""
        self._traces[name] = demand

    def attach(self, namespace: str, name: str, demand: Demand | None) -> None:
        """Attach a demand to one Deployment (by name, before or after it exists); None detaches."""
        if demand is None:
            self._attached.pop((namespace, name), None)
        else:
            self._attached[(namespace, name)] = demand

    def demand_of(self, deployment: Obj) -> Demand | None:
        meta = deployment["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._attached:
            return self._attached[key]
        ann = meta.get("annotations") or {}
        trace = ann.get(TRACE_ANNOTATION)
        if trace is not None:
            return self._traces.get(trace)
        const = ann.get(DEMAND_ANNOTATION)
        if const is not None:
            value = parse_cpu(const)
            return lambda _t: value
        return None

    # ---- reconciliation --------------------------------------------------------------------------------------

    def _on_event(self, rt: ResourceType, ev: Event) -> None:
        if rt.key == self._deployments.key:
            if ev.type == "MODIFIED" and ev.old is not None and ev.old.get("spec") is ev.obj.get("spec"):
                return  # a status or metadata write (often our own): nothing to reconcile
            if ev.type != "DELETED":
                self._reconcile_soon(ev.namespace, ev.obj["metadata"]["name"])
        elif rt.key == self._pods.key:
            meta = ev.obj["metadata"]
            if ev.type == "ADDED":
                self._admit(ev.obj)
            elif ev.type == "DELETED" or (ev.obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                self._release(ev.obj)  # deleted or finished: its room is free
            owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Deployment"), None)
            if owner is None or (ev.namespace, str(owner.get("name"))) == self._current:
                return  # a pod written by the reconciliation under way, which counts pods afresh at its end
            if ev.type != "MODIFIED" or ev.old is None or ev.old.get("status") != ev.obj.get("status"):
                self._reconcile_soon(ev.namespace, str(owner.get("name")))

    def _reconcile_soon(self, namespace: str, name: str) -> None:
        """Reconcile now, unless already inside a reconciliation: then once more when it ends."""
        self._dirty.add((namespace, name))
        if not self._reconciling:
            self._flush()

    @contextlib.contextmanager
    def _coalesced(self) -> Iterator[None]:
        """Many pod writes in a row: each Deployment they touch is reconciled once, at the end."""
        outer = self._reconciling
        self._reconciling = True
        try:
            yield
        finally:
            self._reconciling = outer
        if not outer:
            self._flush()

    def _flush(self) -> None:
        self._reconciling = True
        try:
            rounds = 0
            while self._dirty and rounds < 10_000:
                rounds += 1
                ns, nm = self._dirty.pop()
                dep = self.store.get(self._deployments, ns, nm)
                if dep is not None:
                    self._current = (ns, nm)
                    try:
                        self._reconcile(dep)
                    finally:
                        self._current = None
        finally:
            self._reconciling = False

    def _owned_pods(self, dep: Obj) -> list[Obj]:
        return self.store.dependents(dep["metadata"]["uid"], self._pods)

    def _reconcile(self, dep: Obj) -> None:
        """One batch of pod writes towards the Deployment's spec; what is left continues on a later loop turn."""
        spec = dep.get("spec") or {}
        meta = dep["metadata"]
        ns = meta.get("namespace", "")
        key = (ns, meta["name"])
        template = spec.get("template") or {}
        pods = self._owned_pods(dep)
        self._backlog.pop(key, None)
        self._starved.discard(key)
        refused = 0
        if not spec.get("paused"):
            desired = int(spec.get("replicas", 1) or 0)
            current_hash = self._template_hash(template)
            new = [p for p in pods if p["metadata"].get("labels", {}).get("pod-template-hash") == current_hash]
            old = [p for p in pods if p["metadata"].get("labels", {}).get("pod-template-hash") != current_hash]
            budget = self.batch
            missing = desired - len(new)
            if missing > 0:
                room = max(0, self.pod_capacity + self.max_pending_pods - self.store.count(self._pods))
                count = min(missing, budget, room)
                for _ in range(count):
                    self._create_pod(dep, template, current_hash)
                budget -= count
                if room < min(missing, self.batch):
                    refused = missing - count
                    self._starved.add(key)
            victims = self._victims(new, len(new) - desired)
            for victim in victims[:budget]:
                self._delete_pod(ns, victim)
            budget -= min(budget, len(victims))
            recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
            ready_new = sum(1 for p in new if _is_ready(p))
            keep_old = 0 if recreate else max(0, desired - ready_new)
            old_victims = self._victims(old, len(old) - keep_old)
            for victim in old_victims[:budget]:
                self._delete_pod(ns, victim)
            budget -= min(budget, len(old_victims))
            if budget == 0 and not refused:
                self._continue(key)
            pods = self._owned_pods(dep)
        self._update_status(dep, pods, self._template_hash(template), refused=refused)

    def _continue(self, key: tuple[str, str]) -> None:
        """Reconcile this Deployment again on a later loop turn (its batch ran out)."""
        self._backlog[key] = None
        self._kick()

    def _kick(self) -> None:
        if self._continuation is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (plain in-process use): the next reconciliation or `drain()` picks the work up
        self._continuation = loop.call_soon(self._drain_batch)

    def _drain_batch(self) -> None:
        """One batch of deferred work: bind waiting pods to freed room, then continue cut-short reconciliations."""
        self._continuation = None
        if self.drain(limit=self.batch):
            self._kick()

    def drain(self, *, limit: int | None = None) -> bool:
        """Do deferred work (about `limit` pod writes; all of it when None); True when some is left."""
        budget = limit if limit is not None else math.inf
        with self._coalesced():
            budget -= self._bind_waiting(budget)
        if self._starved and self._has_room():
            for key in self._starved:
                self._backlog[key] = None
            self._starved.clear()
        while self._backlog and budget > 0:
            key = next(iter(self._backlog))
            self._backlog.pop(key)
            before = self.store.resource_version
            self._reconcile_soon(*key)
            budget -= max(1, self.store.resource_version - before)
        return bool(self._backlog) or (bool(self._waiting) and len(self._bound) < self.pod_capacity)

    def close(self) -> None:
        """Drop the scheduled continuation (the cluster is stopping)."""
        if self._continuation is not None:
            self._continuation.cancel()
            self._continuation = None

    # ---- scheduling: a node with room for `pod_capacity` pods --------------------------------------------------

    def _has_room(self) -> bool:
        return self.store.count(self._pods) < self.pod_capacity + self.max_pending_pods

    def _admit(self, pod: Obj) -> None:
        """A new pod: bound at once when it names its node or the cluster has room, else left Pending."""
        meta = pod["metadata"]
        uid = str(meta["uid"])
        status = pod.get("status") or {}
        phase = status.get("phase", "Pending")
        if phase not in ("Pending", "Running"):
            return  # a finished pod holds no room
        if _unschedulable(pod):
            self._waiting[uid] = (meta.get("namespace", ""), meta["name"])
            return
        if phase == "Running" or (pod.get("spec") or {}).get("nodeName"):
            self._bound.add(uid)
            if phase == "Pending":
                self._schedule(pod)
            return
        if len(self._bound) < self.pod_capacity:
            self._bound.add(uid)
            self._schedule(pod)
            return
        self._waiting[uid] = (meta.get("namespace", ""), meta["name"])
        self.store.update(self._pods, _mark_unschedulable(pod, rfc3339(self.clock.now())), bump_generation=False)

    def _release(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        self._waiting.pop(uid, None)
        freed = uid in self._bound
        self._bound.discard(uid)
        if (freed and self._waiting) or self._starved:
            self._kick()

    def _bind_waiting(self, budget: float) -> int:
        """Waiting pods take the room that freed up, first come first served; returns how many were bound."""
        bound = 0
        now = rfc3339(self.clock.now())
        while self._waiting and len(self._bound) < self.pod_capacity and bound < budget:
            uid = next(iter(self._waiting))
            ns, name = self._waiting.pop(uid)
            pod = self.store.get(self._pods, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid:
                continue
            self._bound.add(uid)
            bound += 1
            scheduled = self.store.update(self._pods, _mark_scheduled(pod, now), bump_generation=False)
            self._schedule(scheduled)
        return bound

    @property
    def scheduled_pods(self) -> int:
        """Pods bound to the node (starting or running)."""
        return len(self._bound)

    @property
    def unschedulable_pods(self) -> int:
        """Pods left Pending for want of room."""
        return len(self._waiting)

    def _template_hash(self, template: Obj) -> str:
        """Hash of a pod template, memoized by identity: stored objects are immutable and share unchanged parts,
        so a scale change reuses the template dict and its hash."""
        cached = self._hashes.get(id(template))
        if cached is not None and cached[0] is template:
            return cached[1]
        digest = _template_hash(template)
        if len(self._hashes) > 4096:
            self._hashes.clear()
        self._hashes[id(template)] = (template, digest)
        return digest

    @staticmethod
    def _victims(pods: list[Obj], count: int) -> list[Obj]:
        """Which pods go first on scale-down: not ready, then the newest (as the ReplicaSet controller ranks)."""
        if count <= 0:
            return []
        newest_first = sorted(pods, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]),
                              reverse=True)
        return sorted(newest_first, key=_is_ready)[:count]  # stable: not ready first, newest first within

    def _create_pod(self, dep: Obj, template: Obj, template_hash: str) -> None:
        meta = dep["metadata"]
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), "pod-template-hash": template_hash}
        for _ in range(20):
            name = f"{meta['name']}-{template_hash}-{_suffix(self._rng)}"
            if self.store.get(self._pods, meta.get("namespace", ""), name) is None:
                break
        pod_spec = dict(template.get("spec") or {})
        pod_spec.setdefault("restartPolicy", "Always")
        pod_spec.setdefault("dnsPolicy", "ClusterFirst")
        pod_spec.setdefault("schedulerName", "default-scheduler")
        pod_spec.setdefault("terminationGracePeriodSeconds", 30)
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace", ""),
                "labels": labels,
                **({"annotations": dict(tmeta["annotations"])} if tmeta.get("annotations") else {}),
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"],
                    "controller": True, "blockOwnerDeletion": True,
                }],
            },
            "spec": pod_spec,
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }
        now = rfc3339(self.clock.now())
        # the scheduler's decision, made at once so that a pod is written once
        full = len(self._bound) >= self.pod_capacity
        self.store.create(self._pods, _mark_unschedulable(pod, now) if full else _mark_scheduled(pod, now))

    def _delete_pod(self, namespace: str, pod: Obj) -> None:
        with contextlib.suppress(ApiError):  # already gone (deleted by its owner's garbage collection)
            self.store.delete(self._pods, namespace, pod["metadata"]["name"])

    def _update_status(self, dep: Obj, pods: list[Obj], current_hash: str, *, refused: int = 0) -> None:
        spec = dep.get("spec") or {}
        desired = int(spec.get("replicas", 1) or 0)
        ready = sum(1 for p in pods if _is_ready(p))
        updated = sum(1 for p in pods if p["metadata"].get("labels", {}).get("pod-template-hash") == current_hash)
        old_status = dep.get("status") or {}
        now = rfc3339(self.clock.now())
        status: Obj = {"observedGeneration": dep["metadata"].get("generation", 1)}
        if pods:
            status["replicas"] = len(pods)
        if updated:
            status["updatedReplicas"] = updated
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        if len(pods) - ready > 0 or desired > ready:
            status["unavailableReplicas"] = max(len(pods), desired) - ready
        available = ready >= max(0, desired - _max_unavailable(spec, desired))
        progressing_done = updated == desired == len(pods) and ready == desired
        old_conds = {c.get("type"): c for c in old_status.get("conditions") or []}

        def cond(kind: str, ok: bool, reason: str, message: str) -> Obj:
            prev = old_conds.get(kind)
            value = "True" if ok else "False"
            if prev is not None and prev.get("status") == value and prev.get("reason") == reason:
                return dict(prev)
            return {"type": kind, "status": value, "lastUpdateTime": now, "lastTransitionTime": now,
                    "reason": reason, "message": message}

        name = dep["metadata"]["name"]
        status["conditions"] = [
            cond("Available", available,
                 "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                 "Deployment has minimum availability." if available
                 else "Deployment does not have minimum availability."),
            cond("Progressing", True, "NewReplicaSetAvailable" if progressing_done else "ReplicaSetUpdated",
                 f'Deployment "{name}" has successfully progressed.' if progressing_done
                 else f'Deployment "{name}" is progressing.'),
        ]
        if refused:
            status["conditions"].append(cond(
                "ReplicaFailure", True, "FailedCreate",
                f"pods for {name} are forbidden: the cluster holds at most "
                f"{self.pod_capacity + self.max_pending_pods} pods ({self.pod_capacity} scheduled, "
                f"{self.max_pending_pods} pending)"))
        if status == old_status:
            return
        self.store.update(self._deployments, {**dep, "status": status}, bump_generation=False)

    # ---- pod start-up on the clock ---------------------------------------------------------------------------

    def _startup_delay(self, pod: Obj) -> float:
        ann = pod["metadata"].get("annotations") or {}
        raw = ann.get(STARTUP_ANNOTATION)
        if raw is not None:
            try:
                return max(0.0, float(raw))
            except ValueError:
                logger.warning("pod %s: ignoring bad %s annotation %r", pod["metadata"]["name"], STARTUP_ANNOTATION,
                               raw)
        return self.startup_delay

    def _schedule(self, pod: Obj) -> None:
        meta = pod["metadata"]
        self._seq += 1
        item = _Pending(ready_at=self.clock.now() + self._startup_delay(pod), namespace=meta.get("namespace", ""),
                        name=meta["name"], uid=meta["uid"])
        heapq.heappush(self._pending, (item.ready_at, self._seq, item))
        self._wake.set()
        if self._run_task is not None and self._sleeping_until is not None and item.ready_at < self._sleeping_until:
            # the runner sleeps on the clock past this pod's start: interrupt that sleep (see run())
            self._poked = True
            self._run_task.cancel()

    def start_due_pods(self, *, limit: int | None = None) -> int:
        """Mark Running and Ready the pending pods whose start-up delay has passed (at most `limit` looked at);
        returns how many started. Their Deployments are reconciled once each, at the end."""
        now = self.clock.now()
        started = looked = 0
        with self._coalesced():
            while self._pending and self._pending[0][0] <= now and (limit is None or looked < limit):
                _, _, item = heapq.heappop(self._pending)
                looked += 1
                pod = self.store.get(self._pods, item.namespace, item.name)
                if pod is None or pod["metadata"]["uid"] != item.uid:
                    continue
                self.store.update(self._pods, _running(pod, rfc3339(item.ready_at)), bump_generation=False)
                started += 1
        return started

    def next_start(self) -> float | None:
        return self._pending[0][0] if self._pending else None

    async def run(self) -> None:
        """Start pods as their delays pass on the clock; runs until cancelled.

        One task and no helpers (tests fail on tasks left behind): it waits either for a first pending pod (an
        event) or on the clock for the earliest one. A pod scheduled earlier than that sleep's end interrupts the
        sleep by cancelling this task with `_poked` set, which the loop absorbs.
        """
        self._run_task = asyncio.current_task()
        try:
            while True:
                try:
                    self.start_due_pods(limit=self.batch)
                    self._wake.clear()
                    nxt = self.next_start()
                    if nxt is None:
                        await self._wake.wait()
                    elif nxt <= self.clock.now():
                        await asyncio.sleep(0)  # more are due: let other work in between batches
                    else:
                        self._sleeping_until = nxt
                        await self.clock.sleep(max(0.0, nxt - self.clock.now()))
                except asyncio.CancelledError:
                    if not self._poked:
                        raise
                    self._poked = False
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                finally:
                    self._sleeping_until = None
        finally:
            self._run_task = None

    # ---- metrics ---------------------------------------------------------------------------------------------

    def pod_metrics(self, pod: Obj, *, now: float, demand_cache: dict[str, tuple[float, int]]) -> Obj | None:
        """metrics.k8s.io PodMetrics for one pod, or None when it is not running (metrics-server has none)."""
        if not _is_ready(pod):
            return None
        meta = pod["metadata"]
        ns = meta.get("namespace", "")
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Deployment"), None)
        total, ready = 0.0, 1
        if owner is not None:
            cached = demand_cache.get(f"{ns}/{owner.get('name')}")
            if cached is None:
                dep = self.store.get(self._deployments, ns, str(owner.get("name")))
                demand = self.demand_of(dep) if dep is not None else None
                value = float(demand(now)) if demand is not None else 0.0
                if not math.isfinite(value):
                    value = 0.0
                n_ready = sum(1 for p in self._owned_pods(dep) if _is_ready(p)) if dep is not None else 1
                cached = (value, max(1, n_ready))
                demand_cache[f"{ns}/{owner.get('name')}"] = cached
            total, ready = cached
        containers = (pod.get("spec") or {}).get("containers") or [{"name": "main"}]
        per_pod = total / ready
        requests = [parse_cpu(((c.get("resources") or {}).get("requests") or {}).get("cpu", 0)) for c in containers]
        req_sum = sum(requests)
        usage = []
        for c, req in zip(containers, requests, strict=True):
            share = per_pod * (req / req_sum if req_sum > 0 else 1.0 / len(containers))
            res = c.get("resources") or {}
            cap = parse_cpu((res.get("limits") or {}).get("cpu", 0)) or parse_cpu((res.get("requests") or {}).get(
                "cpu", 0))
            if cap > 0:
                share = min(share, cap)
            mem = (res.get("requests") or {}).get("memory", "64Mi")
            usage.append({"name": c.get("name", "main"), "usage": {"cpu": format_cpu(share), "memory": str(mem)}})
        stamp = rfc3339(now)
        return {
            "kind": "PodMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": meta["name"], "namespace": ns, "labels": dict(meta.get("labels") or {}),
                         "creationTimestamp": stamp},
            "timestamp": stamp,
            "window": "30s",
            "containers": usage,
        }

    def deployment_selects(self, dep: Obj, pod: Obj) -> bool:
        # the API server refused every selector this could not read: none reaches the store
        return selector_matches((dep.get("spec") or {}).get("selector"), pod["metadata"].get("labels") or {})


def _is_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _max_unavailable(spec: Obj, desired: int) -> int:
    raw = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(raw, str) and raw.endswith("%"):
        try:
            return math.floor(desired * float(raw[:-1]) / 100.0)
        except ValueError:
            return 0
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def _unschedulable(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" for c in conds if isinstance(c, dict))


def _mark_scheduled(pod: Obj, now: str) -> Obj:
    status = {**(pod.get("status") or {}), "hostIP": "10.0.0.1",
              "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}
    return {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": _NODE}, "status": status}


def _mark_unschedulable(pod: Obj, now: str) -> Obj:
    status = {**(pod.get("status") or {}), "phase": "Pending",
              "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                              "message": _UNSCHEDULABLE_MESSAGE, "lastTransitionTime": now}]}
    return {**pod, "status": status}


def _running(pod: Obj, started: str) -> Obj:
    spec = pod.get("spec") or {}
    status = dict(pod.get("status") or {})
    status["phase"] = "Running"
    status["startTime"] = status.get("startTime", started)
    octets = int(hashlib.sha1(pod["metadata"]["uid"].encode(), usedforsecurity=False).hexdigest()[:4], 16)
    status["podIP"] = f"10.1.{octets >> 8}.{octets & 0xFF or 1}"
    status["conditions"] = [
        {"type": t, "status": "True", "lastTransitionTime": started}
        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    ]
    status["containerStatuses"] = [
        {"name": c.get("name", "main"), "ready": True, "started": True, "restartCount": 0,
         "image": c.get("image", ""), "imageID": "", "containerID": f"sim://{c.get('name', 'main')}",
         "state": {"running": {"startedAt": started}}}
        for c in spec.get("containers") or []
    ]
    return {**pod, "status": status}

