"""Label and field selectors in the query-string syntax of list/watch (`?labelSelector=`, `?fieldSelector=`).

`LabelSelector` objects (`matchLabels` + `matchExpressions`) are matched by `aihpa.labels`, which the controller's
metrics adapters share; this parser must agree with it on every selector that `aihpa.labels.selector_to_string`
writes (tests/sim/test_selector_agreement.py holds the two to that). Parsing failures raise `ApiError` 400 as the API
server does. Pure: no I/O, no store access.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aihpa.sim.errors import ApiError
from aihpa.sim.types import Obj

__all__ = ["Matcher", "field_labels", "field_selector", "label_selector"]

#: A compiled selector: object in, bool out.
Matcher = Callable[[Obj], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Commas separate terms except inside `in (a,b)` parentheses."""
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def _labels(obj: Obj) -> Mapping[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def label_selector(text: str | None) -> Matcher | None:
    """Compile `app=web,tier!=db,env in (a,b),!legacy`; None when there is nothing to match."""
    if not text or not text.strip():
        return None
    # each requirement: (key, operator, values) with operator one of = != in notin exists !exists
    reqs: list[tuple[str, str, frozenset[str]]] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if m:
            key, op, value = m.groups()
            reqs.append((key, "!=" if op == "!=" else "=", frozenset({value})))
            continue
        m = _SET_RE.match(term)
        if not m:
            raise ApiError.bad_request(f"unable to parse requirement: {term.strip()!r}")
        neg, key, op, values = m.groups()
        if op:
            if neg:
                raise ApiError.bad_request(f"unable to parse requirement: {term.strip()!r}")
            reqs.append((key, op, frozenset(v.strip() for v in values.split(",") if v.strip())))
        else:
            reqs.append((key, "!exists" if neg else "exists", frozenset()))

    def match(obj: Obj) -> bool:
        ls = _labels(obj)
        for key, op, values in reqs:
            present = key in ls
            if op in ("=", "in"):
                ok = present and ls[key] in values
            elif op in ("!=", "notin"):
                ok = not present or ls[key] not in values
            elif op == "exists":
                ok = present
            else:
                ok = not present
            if not ok:
                return False
        return True

    return match


def _field_value(obj: Obj, path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    if cur is None:
        return None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


#: Field labels every kind supports in a field selector.
_COMMON_FIELDS: Mapping[str, str] = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}

#: (group, kind) -> the further field labels the API server supports, each mapped to the path it reads (as its
#: field label conversion functions declare them); any other label is a 400.
_KIND_FIELDS: Mapping[tuple[str, str], Mapping[str, str]] = {
    ("", "Pod"): {f: f for f in ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                  "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                                  "status.podIPs", "status.nominatedNodeName")},
    ("", "Event"): {**{f: f for f in ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                       "involvedObject.uid", "involvedObject.apiVersion",
                                       "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                                       "reportingComponent", "type")}, "source": "source.component"},
    ("events.k8s.io", "Event"): {f: f for f in ("regarding.kind", "regarding.namespace", "regarding.name",
                                                "regarding.uid", "regarding.apiVersion", "regarding.resourceVersion",
                                                "regarding.fieldPath", "reason", "reportingController", "type")},
    ("", "Namespace"): {"status.phase": "status.phase"},
    ("", "Node"): {"spec.unschedulable": "spec.unschedulable"},
    ("", "Secret"): {"type": "type"},
    ("", "Service"): {"spec.clusterIP": "spec.clusterIP", "spec.type": "spec.type"},
    ("", "ReplicationController"): {"status.replicas": "status.replicas"},
    ("apps", "ReplicaSet"): {"status.replicas": "status.replicas"},
    ("batch", "Job"): {"status.successful": "status.successful"},
    ("certificates.k8s.io", "CertificateSigningRequest"): {"spec.signerName": "spec.signerName"},
}


def field_labels(group: str, kind: str) -> Mapping[str, str]:
    """The field labels a field selector may name for a kind, each mapped to the object path it reads."""
    return {**_COMMON_FIELDS, **_KIND_FIELDS.get((group, kind), {})}


def field_selector(text: str | None, supported: Mapping[str, str] | None = None) -> Matcher | None:
    """Compile `metadata.name=x,status.phase!=Running` (`=`, `==` or `!=`).

    `supported` maps the allowed field labels to the paths they read (see `field_labels`): any other label is a 400,
    as the API server answers. Without it, any dotted path is read as is.
    """
    if not text or not text.strip():
        return None
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise ApiError.bad_request(f"invalid field selector: {term.strip()!r}")
        label, op, value = m.groups()
        path = label
        if supported is not None:
            if label not in supported:
                raise ApiError.bad_request(f"field label not supported: {label}")
            path = supported[label]
        checks.append((path, op != "!=", value))

    def match(obj: Obj) -> bool:
        for path, eq, value in checks:
            actual = _field_value(obj, path)
            if (actual if actual is not None else "") == value:
                if not eq:
                    return False
            elif eq:
                return False
        return True

    return match

