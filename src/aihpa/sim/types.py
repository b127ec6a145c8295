"""Typed shapes of the raw Kubernetes JSON that the simulated API server reads and writes.

Objects in the store stay plain dicts (the wire format); these TypedDicts name the parts whose shape the sim relies
on. This module holds types only: no logic, no I/O.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "Obj",
    "Status",
    "StatusCause",
    "StatusDetails",
    "WatchEvent",
]

#: A Kubernetes object or list as JSON: the store's unit. Treated as immutable once stored.
Obj = dict[str, Any]


class StatusCause(TypedDict, total=False):
    reason: str
    message: str
    field: str


class StatusDetails(TypedDict, total=False):
    name: str
    group: str
    kind: str
    uid: str
    causes: list[StatusCause]
    retryAfterSeconds: int


class Status(TypedDict, total=False):
    kind: Literal["Status"]
    apiVersion: Literal["v1"]
    metadata: dict[str, Any]
    status: Literal["Success", "Failure"]
    message: str
    reason: str
    details: StatusDetails
    code: int


class WatchEvent(TypedDict):
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]
    object: Obj


class AdmissionRequest(TypedDict, total=False):
    uid: str
    kind: dict[str, str]
    resource: dict[str, str]
    subResource: str
    requestKind: dict[str, str]
    requestResource: dict[str, str]
    name: str
    namespace: str
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    userInfo: dict[str, Any]
    object: Obj | None
    oldObject: Obj | None
    dryRun: bool
    options: Obj | None


class AdmissionResponse(TypedDict, total=False):
    uid: str
    allowed: bool
    status: Status
    patch: str
    patchType: Literal["JSONPatch"]
    warnings: list[str]
    auditAnnotations: dict[str, str]


class AdmissionReview(TypedDict, total=False):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest
    response: AdmissionResponse
