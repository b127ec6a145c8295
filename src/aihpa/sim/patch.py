"""The three PATCH formats the API server accepts: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
strategic merge patch (the subset of list-merge keys and `$` directives that kubectl and kubernetes-asyncio send).

Functions here return new structures and never mutate their inputs (stored objects are shared, immutable
snapshots). Failures raise `PatchError`, which the server reports as a 4xx `Status`. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from aihpa.jsoncopy import copy_json

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]


class PatchError(ValueError):
    """A patch that cannot be applied; `code` is the HTTP status the API server uses for it."""

    def __init__(self, message: str, *, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# ---- RFC 7386 JSON merge patch ------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy_json(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- RFC 6902 JSON patch ------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", code=400)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not for_add):
        raise PatchError(f"array index {idx} out of range")
    return idx


def _walk(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for tok in tokens:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f"path element {tok!r} not found")
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, for_add=False)]
        else:
            raise PatchError(f"cannot descend into a scalar at {tok!r}")
    return cur


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"cannot remove missing key {last!r}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, for_add=False))
    raise PatchError("cannot remove from a scalar")


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", code=400)
    doc = copy_json(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}", code=400)
        kind = op["op"]
        tokens = _pointer(str(op["path"]))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation needs a value", code=400)
        if kind == "add":
            doc = _add(doc, tokens, copy_json(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, tokens)
        elif kind == "replace":
            _walk(doc, tokens)  # must exist
            doc, _ = _remove(doc, tokens) if tokens else (doc, None)
            doc = _add(doc, tokens, copy_json(op["value"]))
        elif kind in ("move", "copy"):
            src = _pointer(str(op.get("from", "")))
            if kind == "move":
                if tokens[: len(src)] == src and len(tokens) > len(src):
                    raise PatchError("cannot move a value into itself")
                doc, value = _remove(doc, src)
            else:
                value = copy_json(_walk(doc, src))
            doc = _add(doc, tokens, value)
        elif kind == "test":
            if _walk(doc, tokens) != op["value"]:
                raise PatchError(f"test operation failed at {op['path']!r}")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}", code=400)
    return doc


# ---- strategic merge patch ----------------------------------------------------------------------------------

# Lists merged element-wise by a key, as the Kubernetes API types declare with patchMergeKey. The key depends only on
# the field name except for `ports`, whose merge key is `containerPort` inside a container and `port` elsewhere.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "secrets": "name",
}
# Lists of scalars that merge as sets.
_SET_LISTS = frozenset({"finalizers"})


def _merge_key(field_name: str, parent: str) -> str | None:
    if field_name == "ports":
        return "containerPort" if parent in ("containers", "initContainers", "ephemeralContainers") else "port"
    return _MERGE_KEYS.get(field_name)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    return _smp_map(target if isinstance(target, dict) else {}, patch, parent="")


def _smp_map(target: dict[str, Any], patch: Any, *, parent: str) -> Any:
    if not isinstance(patch, dict):
        return copy_json(patch)
    if patch.get("$patch") == "replace":
        return {k: copy_json(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue  # order directives: element order carries no meaning for the sim
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            drop = set(value or [])
            result[name] = [v for v in result.get(name) or [] if v not in drop]
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _smp_map(current if isinstance(current, dict) else {}, value, parent=key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(current if isinstance(current, list) else [], value, field_name=key,
                                    parent=parent)
        else:
            result[key] = value
    if isinstance(retain, list):
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _smp_list(current: list[Any], patch: list[Any], *, field_name: str, parent: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy_json(p) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    if field_name in _SET_LISTS:
        out = list(current)
        out.extend(v for v in patch if v not in out)
        return out
    key = _merge_key(field_name, parent)
    if key is None or not all(isinstance(p, dict) for p in patch):
        return list(copy_json(patch))  # lists without a merge key are atomic: the patch replaces them
    out = list(current)
    for item in patch:
        if key not in item:
            out.append(copy_json({k: v for k, v in item.items() if k != "$patch"}))
            continue
        pos = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if pos is not None:
                out.pop(pos)
            continue
        if pos is None:
            out.append(_smp_map({}, item, parent=field_name))
        else:
            out[pos] = _smp_map(out[pos], item, parent=field_name)
    return out
