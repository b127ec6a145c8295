"""Admission logic: an AdmissionReview `admission.k8s.io/v1` in, the review with its response out.

Only Deployments (apps/v1) labeled `aihpa/enabled: "true"` on CREATE, or on an UPDATE that adds the label, are
mutated: the effective policy is written as annotations (each invalid value becomes a warning and its default), the
webhook records what it did (`aihpa/managed`, `aihpa/model-version`, `aihpa/initial-forecast`,
`aihpa/requested-replicas`), and on CREATE `spec.replicas` becomes the profile's forecast for `now`, clamped to the
policy's bounds. Everything else is allowed unchanged. The mutator edits a deep copy and `jsonpatch.diff` derives the
patch, so applying the response to its own output yields no further change (reinvocation is a no-op).

Pure: no I/O, no wall clock (`now` is an argument), no aiohttp. It must never deny a request: aihpa only advises.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from aihpa.annotations import (
    ANNOTATION_INITIAL_FORECAST,
    ANNOTATION_MANAGED,
    ANNOTATION_MODEL_VERSION,
    ANNOTATION_REQUESTED_REPLICAS,
    Policy,
    is_enabled,
    parse_policy,
    policy_annotations,
)
from aihpa.jsoncopy import copy_json
from aihpa.profiles import ProfileSource, ReplicaProfile
from aihpa.webhook import jsonpatch
from aihpa.webhook.settings import WebhookSettings
from aihpa.webhook.types import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionReview,
    GroupVersionKind,
    PatchOp,
)

__all__ = [
    "API_VERSION",
    "InitialForecast",
    "MalformedReview",
    "admit",
    "decode_patch",
    "decode_review",
    "fail_open",
    "initial_forecast",
    "review",
    "wrap",
]

API_VERSION: Final = "admission.k8s.io/v1"
_OPERATIONS: Final = frozenset(("CREATE", "UPDATE", "DELETE", "CONNECT"))
_APP_LABELS: Final = ("app.kubernetes.io/name", "app")
# Kubernetes truncates or rejects long warnings; keep each one short and single-line.
_MAX_WARNING: Final = 120
_MAX_WARNINGS: Final = 16


class MalformedReview(ValueError):
    """The body is not an AdmissionReview v1 request; the message names the offending field."""


def _require_str(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> None:
    if key not in obj or obj[key] is None:
        if optional:
            return
        raise MalformedReview(f"{where}.{key} is required")
    if not isinstance(obj[key], str):
        raise MalformedReview(f"{where}.{key} must be a string")


def _require_map(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> None:
    if key not in obj or obj[key] is None:
        if optional:
            return
        raise MalformedReview(f"{where}.{key} is required")
    if not isinstance(obj[key], dict):
        raise MalformedReview(f"{where}.{key} must be an object")


def decode_review(body: object) -> AdmissionRequest:
    """The request of an AdmissionReview v1, checked field by field; raises `MalformedReview` naming the field."""
    if not isinstance(body, dict):
        raise MalformedReview("an AdmissionReview must be a JSON object")
    if body.get("apiVersion") != API_VERSION:
        raise MalformedReview(f"apiVersion must be {API_VERSION!r}, got {str(body.get('apiVersion'))[:40]!r}")
    if body.get("kind") != "AdmissionReview":
        raise MalformedReview(f"kind must be 'AdmissionReview', got {str(body.get('kind'))[:40]!r}")
    _require_map(body, "request", "AdmissionReview")
    request = body["request"]
    _require_str(request, "uid", "request")
    if not request["uid"]:
        raise MalformedReview("request.uid must not be empty")
    for key, fields in (("kind", ("group", "version", "kind")), ("resource", ("group", "version", "resource"))):
        _require_map(request, key, "request")
        for name in fields:
            _require_str(request[key], name, f"request.{key}")
    _require_str(request, "operation", "request")
    if request["operation"] not in _OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(sorted(_OPERATIONS))}")
    for key in ("name", "namespace", "subResource"):
        _require_str(request, key, "request", optional=True)
    for key in ("object", "oldObject", "userInfo", "options"):
        _require_map(request, key, "request", optional=True)
    if "dryRun" in request and request["dryRun"] is not None and not isinstance(request["dryRun"], bool):
        raise MalformedReview("request.dryRun must be a boolean")
    return cast(AdmissionRequest, request)


def wrap(response: AdmissionResponse) -> AdmissionReview:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def fail_open(uid: str, reason: str) -> AdmissionReview:
    """Allow unchanged, with a warning: aihpa must never block a deploy because of its own failure."""
    return wrap({"uid": uid, "allowed": True, "warnings": [_short(f"aihpa: {reason}; admitted unchanged")]})


def decode_patch(response: AdmissionResponse) -> list[PatchOp]:
    """The JSONPatch carried by a response (empty when there is none)."""
    if "patch" not in response:
        return []
    return cast(list[PatchOp], json.loads(base64.b64decode(response["patch"], validate=True)))


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_WARNING else line[: _MAX_WARNING - 3] + "..."


def _is_deployment(gvk: GroupVersionKind) -> bool:
    return (gvk["group"], gvk["version"], gvk["kind"]) == ("apps", "v1", "Deployment")


def _labels(obj: Mapping[str, Any] | None) -> object:
    if obj is None:
        return None
    metadata = obj.get("metadata")
    return metadata.get("labels") if isinstance(metadata, dict) else None


def _skip_reason(request: AdmissionRequest) -> str | None:
    """Why this request is allowed unchanged, or None when it is to be mutated."""
    if not _is_deployment(request["kind"]):
        return "not an apps/v1 Deployment"
    if request.get("subResource"):
        return "a subresource"
    obj = request.get("object")
    if obj is None or not is_enabled(_labels(obj)):
        return "not labeled aihpa/enabled=true"
    operation = request["operation"]
    if operation == "CREATE":
        return None
    if operation == "UPDATE":
        return None if not is_enabled(_labels(request.get("oldObject"))) else "already labeled before this update"
    return f"operation {operation}"


@dataclass(frozen=True, slots=True)
class InitialForecast:
    """What the webhook decided for `spec.replicas`, and why (recorded in `aihpa/initial-forecast`)."""

    replicas: int | None  # the value written to spec.replicas; None leaves it as typed
    reason: str
    forecast: int | None = None  # the profile's raw value for this slot, before clamping
    profile: str | None = None  # namespace/name of the profile used
    matched_by: str | None = None  # "name" or the label key that found the profile
    slot: str | None = None  # the slot's start, "HH:MM" UTC

    def to_annotation(self) -> str:
        data = {
            "replicas": self.replicas,
            "forecast": self.forecast,
            "profile": self.profile,
            "matchedBy": self.matched_by,
            "slot": self.slot,
            "reason": self.reason,
        }
        return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"), sort_keys=True)


def _find_profile(
    profiles: ProfileSource, *, namespace: str, name: str, labels: Mapping[str, Any]
) -> tuple[ReplicaProfile, str] | None:
    if name:
        found = profiles.by_workload(namespace, name)
        if found is not None:
            return found, "name"
    for key in _APP_LABELS:
        app = labels.get(key)
        if isinstance(app, str) and app:
            found = profiles.by_app(namespace, app)
            if found is not None:
                return found, key
    return None


def initial_forecast(
    *,
    obj: Mapping[str, Any],
    namespace: str,
    operation: str,
    policy: Policy,
    profiles: ProfileSource,
    settings: WebhookSettings,
    now: float,
) -> tuple[InitialForecast, ReplicaProfile | None]:
    """The initial replicas for a Deployment being admitted, with the reason, and the profile it came from."""
    if operation != "CREATE":
        return InitialForecast(None, "existing Deployment: the controller scales it"), None
    if policy.mode == "reactive":
        return InitialForecast(None, "mode reactive: no forecast"), None
    metadata = obj.get("metadata") or {}
    raw_name = metadata.get("name")
    # A CREATE with generateName has no name yet: the app label is then the only way to find a profile.
    name = raw_name if isinstance(raw_name, str) else ""
    labels = metadata.get("labels") or {}
    found = _find_profile(profiles, namespace=namespace, name=name, labels=labels)
    if found is None:
        return InitialForecast(None, f"no replica profile for {namespace}/{name or '?'} or its app label"), None
    profile, matched_by = found
    where = f"{profile.namespace}/{profile.name}"
    age = now - profile.generated_at
    if age > settings.profile_max_age_s:
        reason = f"replica profile {where} is stale ({age / 3600:.0f} h old)"
        return InitialForecast(None, reason, profile=where, matched_by=matched_by), None
    forecast = profile.replicas_at(now)
    clamped = policy.clamp(forecast)
    start = profile.slot_at(now) * profile.slot_s
    slot = f"{start // 3600:02d}:{start % 3600 // 60:02d}"
    bounds = "" if clamped == forecast else f", clamped to {policy.min_replicas}..{policy.max_replicas}"
    if policy.mode == "dry-run":
        replicas, reason = None, f"mode dry-run: would set {clamped} replicas{bounds}"
    else:
        replicas, reason = clamped, f"forecast for {slot} UTC{bounds}"
    decision = InitialForecast(replicas, reason, forecast=forecast, profile=where, matched_by=matched_by, slot=slot)
    return decision, profile


def _mutate(
    obj: dict[str, Any], *, request: AdmissionRequest, settings: WebhookSettings, profiles: ProfileSource, now: float
) -> list[str]:
    """Edit `obj` in place (a deep copy of the admitted object); returns the warnings."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return ["metadata is not an object"]
    annotations = metadata.get("annotations")
    if annotations is None:
        annotations = {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        return ["metadata.annotations is not a map of strings"]
    parsed = parse_policy(annotations, defaults=settings.defaults)
    updated = dict(annotations)
    updated.update(policy_annotations(parsed.policy))

    # Reinvocation (or a re-admitted managed object) keeps the first decision, so the patch converges to empty even
    # when `now` has moved into another slot.
    decided = annotations.get(ANNOTATION_MANAGED) == "true" and ANNOTATION_INITIAL_FORECAST in annotations
    spec = obj.get("spec")
    if not decided:
        namespace = request.get("namespace") or metadata.get("namespace") or "default"
        decision, profile = initial_forecast(
            obj=obj,
            namespace=str(namespace),
            operation=request["operation"],
            policy=parsed.policy,
            profiles=profiles,
            settings=settings,
            now=now,
        )
        typed = spec.get("replicas") if isinstance(spec, dict) else None
        if isinstance(typed, bool) or not isinstance(typed, int):
            typed = None
        if decision.replicas is not None and not isinstance(spec, dict):
            decision = InitialForecast(None, "spec is not an object", forecast=decision.forecast)
        updated[ANNOTATION_MANAGED] = "true"
        updated[ANNOTATION_MODEL_VERSION] = profile.model_version if profile is not None else settings.model_version
        updated[ANNOTATION_INITIAL_FORECAST] = decision.to_annotation()
        updated[ANNOTATION_REQUESTED_REPLICAS] = "unset" if typed is None else str(typed)
        if decision.replicas is not None and isinstance(spec, dict):
            spec["replicas"] = decision.replicas
    else:
        updated.setdefault(ANNOTATION_MODEL_VERSION, settings.model_version)
        updated.setdefault(ANNOTATION_REQUESTED_REPLICAS, "unset")
    metadata["annotations"] = updated
    return list(parsed.warnings)


def admit(
    request: AdmissionRequest, *, settings: WebhookSettings, profiles: ProfileSource, now: float
) -> AdmissionResponse:
    """The response to one decoded request: always allowed, with a patch when the Deployment is to be mutated."""
    response: AdmissionResponse = {"uid": request["uid"], "allowed": True}
    if _skip_reason(request) is not None:
        return response
    original = request.get("object")
    assert original is not None  # _skip_reason returns a reason for a request without an object
    mutated = copy_json(original)
    warnings = _mutate(mutated, request=request, settings=settings, profiles=profiles, now=now)
    patch = jsonpatch.diff(original, mutated)
    if patch:
        response["patchType"] = "JSONPatch"
        encoded = json.dumps(patch, separators=(",", ":"), allow_nan=False).encode()
        response["patch"] = base64.b64encode(encoded).decode("ascii")
    if warnings:
        response["warnings"] = [_short("aihpa: " + w) for w in warnings[:_MAX_WARNINGS]]
    return response


def review(body: object, *, settings: WebhookSettings, profiles: ProfileSource, now: float) -> AdmissionReview:
    """Decode a review, admit it, and wrap the response; raises `MalformedReview` for a body that is not a review."""
    request = decode_review(body)
    return wrap(admit(request, settings=settings, profiles=profiles, now=now))
