"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, with the columns the API server
prints for Deployments, Pods and Namespaces and NAME/AGE for everything else.

Pure formatting of objects into rows; it never reads the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aihpa.durations import human_duration
from aihpa.sim.resources import ResourceType
from aihpa.sim.types import Obj

__all__ = ["human_duration", "to_table"]

_Col = tuple[str, str, str, int]  # name, type, format, priority




def _seconds(value: Any) -> float | None:
    """An RFC 3339 time (whole or fractional seconds) as epoch seconds; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:  # the age needs no fraction, and fraction lengths vary between writers
        head, _, tail = text.partition(".")
        zone = tail[next((i for i, c in enumerate(tail) if c in "+-"), len(tail)):]
        text = head + zone
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _since(value: Any, now: float) -> str:
    seconds = _seconds(value)
    return "<unknown>" if seconds is None else human_duration(now - seconds)


def _age(obj: Obj, now: float) -> str:
    return _since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _deployment(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    sel = ",".join(f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items())
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        int(status.get("updatedReplicas", 0)),
        int(status.get("availableReplicas", 0)),
        _age(obj, now),
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
        sel,
    ]


def _pod(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in status.get("containerStatuses") or [] if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in status.get("containerStatuses") or [])
    return [obj["metadata"]["name"], f"{ready}/{total}", status.get("phase", "Pending"), restarts, _age(obj, now),
            status.get("podIP", "<none>"), spec.get("nodeName", "<none>")]


def _namespace(obj: Obj, now: float) -> list[Any]:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", "Active"), _age(obj, now)]


def _hpa(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    current = {m.get("resource", {}).get("name"): m.get("resource", {}).get("current", {})
               for m in status.get("currentMetrics") or [] if m.get("type") == "Resource"}
    targets = []
    for m in spec.get("metrics") or []:
        if m.get("type") == "Resource":
            res = m.get("resource") or {}
            target = res.get("target") or {}
            now_value = current.get(res.get("name"), {}).get("averageUtilization")
            shown = f"{now_value}%" if now_value is not None else "<unknown>"
            want = target.get("averageUtilization")
            targets.append(f"{res.get('name')}: {shown}/{want}%" if want is not None else f"{res.get('name')}")
        else:
            targets.append(str(m.get("type", "")))
    return [obj["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", ", ".join(targets) or "<none>",
            spec.get("minReplicas", 1), spec.get("maxReplicas", 0), int(status.get("currentReplicas", 0)),
            _age(obj, now)]


def _event(obj: Obj, now: float) -> list[Any]:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    last = (obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp") or obj.get("eventTime")
            or (obj.get("metadata") or {}).get("creationTimestamp"))
    return [_since(last, now), obj.get("type", ""), obj.get("reason", ""),
            f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}", obj.get("message") or obj.get("note", ""),
            obj["metadata"]["name"]]


def _default(obj: Obj, now: float) -> list[Any]:
    return [obj["metadata"]["name"], _age(obj, now)]


_LAYOUTS: dict[str, tuple[list[_Col], Callable[[Obj, float], list[Any]]]] = {
    "apps/Deployment": ([("Name", "string", "name", 0), ("Ready", "string", "", 0), ("Up-to-date", "integer", "", 0),
                         ("Available", "integer", "", 0), ("Age", "string", "", 0), ("Containers", "string", "", 1),
                         ("Images", "string", "", 1), ("Selector", "string", "", 1)], _deployment),
    "/Pod": ([("Name", "string", "name", 0), ("Ready", "string", "", 0), ("Status", "string", "", 0),
              ("Restarts", "string", "", 0), ("Age", "string", "", 0), ("IP", "string", "", 1),
              ("Node", "string", "", 1)], _pod),
    "/Namespace": ([("Name", "string", "name", 0), ("Status", "string", "", 0), ("Age", "string", "", 0)],
                   _namespace),
    "autoscaling/HorizontalPodAutoscaler": (
        [("Name", "string", "name", 0), ("Reference", "string", "", 0), ("Targets", "string", "", 0),
         ("MinPods", "string", "", 0), ("MaxPods", "string", "", 0), ("Replicas", "string", "", 0),
         ("Age", "string", "", 0)], _hpa),
    "/Event": ([("Last Seen", "string", "", 0), ("Type", "string", "", 0), ("Reason", "string", "", 0),
                ("Object", "string", "", 0), ("Message", "string", "", 0), ("Name", "string", "", 1)], _event),
    "events.k8s.io/Event": ([("Last Seen", "string", "", 0), ("Type", "string", "", 0), ("Reason", "string", "", 0),
                             ("Object", "string", "", 0), ("Message", "string", "", 0),
                             ("Name", "string", "", 1)], _event),
}
_DEFAULT: tuple[list[_Col], Callable[[Obj, float], list[Any]]] = (
    [("Name", "string", "name", 0), ("Age", "string", "", 0)], _default)


def to_table(rt: ResourceType, objects: list[Obj], *, now: float, resource_version: str, include_object: str,
             with_columns: bool = True, list_meta: Obj | None = None) -> Obj:
    """A Table of `objects`; `include_object` is the request's includeObject (None, Object, Metadata)."""
    columns, row = _LAYOUTS.get(f"{rt.group}/{rt.kind}", _DEFAULT)
    rows = []
    for o in objects:
        try:
            cells = row(o, now)
        except (AttributeError, TypeError, ValueError, KeyError):
            # stored generically, an object may hold any JSON: print what can be printed, never fail the listing
            cells = [str((o.get("metadata") or {}).get("name", ""))] + ["<invalid>"] * (len(columns) - 1)
        r: Obj = {"cells": cells}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": o.get("metadata") or {}}
        rows.append(r)
    table: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {**(list_meta or {}), "resourceVersion": resource_version},
        "rows": rows,
    }
    if with_columns:
        table["columnDefinitions"] = [
            {"name": n, "type": t, "format": f, "description": n, "priority": p} for n, t, f, p in columns
        ]
    return table
