"""Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), turned into JSON objects.

kubectl's typed commands (`kubectl create namespace|deployment|configmap|secret|serviceaccount|job|role|clusterrole|
rolebinding|clusterrolebinding`, `kubectl autoscale`) send protobuf, not JSON. This module decodes the `k8s\\x00`
envelope (runtime.Unknown) and, for the kinds those commands create, the fields they set, using the field numbers of
the Kubernetes `generated.proto` files. Unknown fields are skipped and zero values dropped, as JSON's omitempty would.
Responses stay JSON. Pure decoding: no I/O, no state.
"""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["CONTENT_TYPE", "ProtobufError", "decode_object"]

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# field number -> (JSON name, kind, nested schema). Kinds: str, int, int0 (a pointer: zero is kept), bool, msg,
# rmsg (repeated message), rstr (repeated string), map (string->string), mapb (string->bytes, base64 in JSON),
# mapq (string->Quantity), qty (Quantity), ios (IntOrString).
Schema = dict[int, tuple[str, str, Any]]

_LABEL_REQ: Schema = {1: ("key", "str", None), 2: ("operator", "str", None), 3: ("values", "rstr", None)}
_SELECTOR: Schema = {1: ("matchLabels", "map", None), 2: ("matchExpressions", "rmsg", _LABEL_REQ)}
_OWNER_REF: Schema = {1: ("kind", "str", None), 3: ("name", "str", None), 4: ("uid", "str", None),
                      5: ("apiVersion", "str", None), 6: ("controller", "bool", None),
                      7: ("blockOwnerDeletion", "bool", None)}
_META: Schema = {1: ("name", "str", None), 2: ("generateName", "str", None), 3: ("namespace", "str", None),
                 11: ("labels", "map", None), 12: ("annotations", "map", None),
                 13: ("ownerReferences", "rmsg", _OWNER_REF), 14: ("finalizers", "rstr", None)}
_PORT: Schema = {1: ("name", "str", None), 2: ("hostPort", "int", None), 3: ("containerPort", "int", None),
                 4: ("protocol", "str", None), 5: ("hostIP", "str", None)}
_ENV: Schema = {1: ("name", "str", None), 2: ("value", "str", None)}
_RESOURCES: Schema = {1: ("limits", "mapq", None), 2: ("requests", "mapq", None)}
_CONTAINER: Schema = {1: ("name", "str", None), 2: ("image", "str", None), 3: ("command", "rstr", None),
                      4: ("args", "rstr", None), 5: ("workingDir", "str", None), 6: ("ports", "rmsg", _PORT),
                      7: ("env", "rmsg", _ENV), 8: ("resources", "msg", _RESOURCES),
                      13: ("terminationMessagePath", "str", None), 14: ("imagePullPolicy", "str", None),
                      16: ("stdin", "bool", None), 17: ("stdinOnce", "bool", None), 18: ("tty", "bool", None),
                      20: ("terminationMessagePolicy", "str", None)}
_POD_SPEC: Schema = {2: ("containers", "rmsg", _CONTAINER), 3: ("restartPolicy", "str", None),
                     4: ("terminationGracePeriodSeconds", "int0", None), 6: ("dnsPolicy", "str", None),
                     7: ("nodeSelector", "map", None), 8: ("serviceAccountName", "str", None),
                     10: ("nodeName", "str", None), 19: ("schedulerName", "str", None),
                     20: ("initContainers", "rmsg", _CONTAINER), 24: ("priorityClassName", "str", None)}
_TEMPLATE: Schema = {1: ("metadata", "msg", _META), 2: ("spec", "msg", _POD_SPEC)}
_ROLLING: Schema = {1: ("maxUnavailable", "ios", None), 2: ("maxSurge", "ios", None)}
_STRATEGY: Schema = {1: ("type", "str", None), 2: ("rollingUpdate", "msg", _ROLLING)}
_DEPLOYMENT_SPEC: Schema = {1: ("replicas", "int0", None), 2: ("selector", "msg", _SELECTOR),
                            3: ("template", "msg", _TEMPLATE), 4: ("strategy", "msg", _STRATEGY),
                            5: ("minReadySeconds", "int", None), 6: ("revisionHistoryLimit", "int0", None),
                            7: ("paused", "bool", None), 9: ("progressDeadlineSeconds", "int0", None)}
_LOCAL_REF: Schema = {1: ("name", "str", None)}
_JOB_SPEC: Schema = {1: ("parallelism", "int0", None), 2: ("completions", "int0", None),
                     3: ("activeDeadlineSeconds", "int0", None), 6: ("template", "msg", _TEMPLATE),
                     7: ("backoffLimit", "int0", None), 8: ("ttlSecondsAfterFinished", "int0", None)}
_RULE: Schema = {1: ("verbs", "rstr", None), 2: ("apiGroups", "rstr", None), 3: ("resources", "rstr", None),
                 4: ("resourceNames", "rstr", None), 5: ("nonResourceURLs", "rstr", None)}
_SUBJECT: Schema = {1: ("kind", "str", None), 2: ("apiGroup", "str", None), 3: ("name", "str", None),
                    4: ("namespace", "str", None)}
_ROLE_REF: Schema = {1: ("apiGroup", "str", None), 2: ("kind", "str", None), 3: ("name", "str", None)}
_METRIC_TARGET: Schema = {1: ("type", "str", None), 2: ("value", "qty", None), 3: ("averageValue", "qty", None),
                          4: ("averageUtilization", "int0", None)}
_METRIC: Schema = {1: ("type", "str", None),
                   4: ("resource", "msg", {1: ("name", "str", None), 2: ("target", "msg", _METRIC_TARGET)})}
_HPA_SPEC: Schema = {1: ("scaleTargetRef", "msg", {1: ("kind", "str", None), 2: ("name", "str", None),
                                                   3: ("apiVersion", "str", None)}),
                     2: ("minReplicas", "int0", None), 3: ("maxReplicas", "int0", None),
                     4: ("metrics", "rmsg", _METRIC)}
_RBAC = "rbac.authorization.k8s.io/v1"

#: (apiVersion, kind) -> top-level schema, for the kinds kubectl's typed create commands send.
KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {1: ("metadata", "msg", _META), 2: ("spec", "msg", {1: ("finalizers", "rstr", None)})},
    ("v1", "ConfigMap"): {1: ("metadata", "msg", _META), 2: ("data", "map", None), 3: ("binaryData", "mapb", None),
                          4: ("immutable", "bool", None)},
    ("v1", "Secret"): {1: ("metadata", "msg", _META), 2: ("data", "mapb", None), 3: ("type", "str", None),
                       4: ("stringData", "map", None), 5: ("immutable", "bool", None)},
    ("v1", "ServiceAccount"): {1: ("metadata", "msg", _META), 3: ("imagePullSecrets", "rmsg", _LOCAL_REF)},
    ("apps/v1", "Deployment"): {1: ("metadata", "msg", _META), 2: ("spec", "msg", _DEPLOYMENT_SPEC)},
    ("batch/v1", "Job"): {1: ("metadata", "msg", _META), 2: ("spec", "msg", _JOB_SPEC)},
    ("autoscaling/v2", "HorizontalPodAutoscaler"): {1: ("metadata", "msg", _META), 2: ("spec", "msg", _HPA_SPEC)},
    (_RBAC, "Role"): {1: ("metadata", "msg", _META), 2: ("rules", "rmsg", _RULE)},
    (_RBAC, "ClusterRole"): {1: ("metadata", "msg", _META), 2: ("rules", "rmsg", _RULE)},
    (_RBAC, "RoleBinding"): {1: ("metadata", "msg", _META), 2: ("subjects", "rmsg", _SUBJECT),
                             3: ("roleRef", "msg", _ROLE_REF)},
    (_RBAC, "ClusterRoleBinding"): {1: ("metadata", "msg", _META), 2: ("subjects", "rmsg", _SUBJECT),
                                    3: ("roleRef", "msg", _ROLE_REF)},
}


class ProtobufError(ValueError):
    """A body that is not Kubernetes protobuf, or of a kind this decoder does not know."""


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; value is an int (varint) or bytes (length-delimited)."""
    out: list[tuple[int, int, Any]] = []
    i, n = 0, len(buf)

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            if i >= n:
                raise ProtobufError("truncated varint")
            byte = buf[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < n:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, wire, varint()))
        elif wire == 2:
            length = varint()
            if i + length > n:
                raise ProtobufError("truncated field")
            out.append((number, wire, buf[i:i + length]))
            i += length
        elif wire == 1:
            out.append((number, wire, buf[i:i + 8]))
            i += 8
        elif wire == 5:
            out.append((number, wire, buf[i:i + 4]))
            i += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, v in _fields(raw):
        if number == 1:
            key = bytes(v).decode()
        elif number == 2:
            value = bytes(v)
    return key, value


def _quantity(raw: bytes) -> str:
    for number, _, v in _fields(raw):
        if number == 1:
            return bytes(v).decode()
    return "0"


def _int_or_string(raw: bytes) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, _, v in _fields(raw):
        if number == 1:
            kind = int(v)
        elif number == 2:
            int_val = _signed(int(v))
        elif number == 3:
            str_val = bytes(v).decode()
    return str_val if kind == 1 else int_val


def _message(raw: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, wire, value in _fields(raw):
        spec = schema.get(number)
        if spec is None:
            continue  # a field the sim does not need
        name, kind, sub = spec
        if kind in ("int", "int0", "bool"):
            if wire != 0:
                raise ProtobufError(f"field {name}: expected a varint")
            number_value = _signed(int(value))
            if kind == "bool":
                if number_value:
                    out[name] = True
            elif number_value or kind == "int0":
                out[name] = number_value
            continue
        if wire != 2:
            raise ProtobufError(f"field {name}: expected length-delimited data")
        data = bytes(value)
        if kind == "str":
            if data:
                out[name] = data.decode()
        elif kind == "rstr":
            out.setdefault(name, []).append(data.decode())
        elif kind == "msg":
            nested = _message(data, sub)
            if nested:
                out[name] = nested
        elif kind == "rmsg":
            out.setdefault(name, []).append(_message(data, sub))
        elif kind in ("map", "mapb", "mapq"):
            key, entry = _map_entry(data)
            if kind == "map":
                out.setdefault(name, {})[key] = entry.decode()
            elif kind == "mapb":
                out.setdefault(name, {})[key] = base64.b64encode(entry).decode()
            else:
                out.setdefault(name, {})[key] = _quantity(entry)
        elif kind == "ios":
            out[name] = _int_or_string(data)
        elif kind == "qty":
            out[name] = _quantity(data)
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded Kubernetes object as the JSON object a JSON client would have sent."""
    if not body.startswith(_MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body (missing the k8s envelope)")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(_MAGIC):]):
        if number == 1:
            for n2, _, v2 in _fields(bytes(value)):
                if n2 == 1:
                    api_version = bytes(v2).decode()
                elif n2 == 2:
                    kind = bytes(v2).decode()
        elif number == 2:
            raw = bytes(value)
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"protobuf bodies of {kind or 'unknown kind'} ({api_version or '?'}) are not supported; "
                            "send application/json")
    return {"apiVersion": api_version, "kind": kind, **_message(raw, schema)}
