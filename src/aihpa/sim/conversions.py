"""Conversions between API versions that share one storage, as the API server converts on the way in and out.

`events.k8s.io/v1` Events are stored as core `v1` Events, so an Event written through either API is read through
both (`kubectl get events` sees what a controller records with the events API). Pure functions over dicts.
"""

from __future__ import annotations

from aihpa.sim.types import Obj

__all__ = ["core_event_to_events_v1", "events_v1_to_core_event"]

# events.k8s.io/v1 field <- core v1 field; fields with the same name in both are copied as they are
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def core_event_to_events_v1(event: Obj) -> Obj:
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key in _SAME:
        if event.get(key) is not None:
            out[key] = event[key]
    for new, old in _RENAMED.items():
        if event.get(old) is not None:
            out[new] = event[old]
    if isinstance(out.get("series"), dict):
        out["series"] = {k: v for k, v in out["series"].items() if k in ("count", "lastObservedTime")}
    if "eventTime" not in out:
        # the events API requires eventTime; a core Event may only have second-precision timestamps
        when = event.get("firstTimestamp") or event.get("lastTimestamp") or (event.get("metadata") or {}).get(
            "creationTimestamp")
        if isinstance(when, str) and when.endswith("Z") and "." not in when:
            out["eventTime"] = when[:-1] + ".000000Z"
    return out


def events_v1_to_core_event(event: Obj) -> Obj:
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    for key in _SAME:
        if event.get(key) is not None:
            out[key] = event[key]
    for new, old in _RENAMED.items():
        if event.get(new) is not None:
            out[old] = event[new]
    # core Events require an involvedObject; the events API calls it regarding and may leave it out
    out.setdefault("involvedObject", {})
    return out
