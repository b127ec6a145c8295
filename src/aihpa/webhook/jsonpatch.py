"""RFC 6902 JSONPatch by diffing: the one place where patch paths are written.

Mutators edit a deep copy (`aihpa.jsoncopy`) of the admitted object; `diff(original, mutated)` turns the difference
into operations, so no other code spells a JSON Pointer by hand. `apply` is its inverse, used to check patches (tests,
the simulator).

Pure: no I/O. It must never hand-write paths elsewhere or emit a patch that does not apply to the original.
"""

from __future__ import annotations

from typing import Any

from aihpa.jsoncopy import copy_json
from aihpa.webhook.types import PatchOp

__all__ = ["PatchError", "apply", "diff", "escape", "pointer", "unescape"]


class PatchError(ValueError):
    """A patch that cannot be applied to the given document."""


def escape(token: str) -> str:
    """One JSON Pointer reference token (RFC 6901): '~' becomes '~0' first, then '/' becomes '~1'."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    # The reverse order matters: '~01' must decode to '~1', not '/'.
    return token.replace("~1", "/").replace("~0", "~")


def pointer(*tokens: str | int) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def _same(a: object, b: object) -> bool:
    """JSON equality: unlike Python's, True is not 1 and 1 is not 1.0 (the API server keeps the types apart)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def diff(original: object, mutated: object) -> list[PatchOp]:
    """The operations that turn `original` into `mutated`; empty when they are equal.

    Objects are compared key by key; a list that changed is replaced whole, which is always correct and, for the
    small lists a mutator touches, no larger than index-wise operations.
    """
    ops: list[PatchOp] = []
    _diff(original, mutated, (), ops)
    return ops


def _diff(a: object, b: object, at: tuple[str, ...], ops: list[PatchOp]) -> None:
    # `at` holds raw keys; they are escaped only for the few paths that end up in an operation.
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": pointer(*at, key)})
        for key, value in b.items():
            if key not in a:
                ops.append({"op": "add", "path": pointer(*at, key), "value": copy_json(value)})
            elif a[key] is not value:  # a shared scalar is unchanged by construction
                _diff(a[key], value, (*at, key), ops)
        return
    if not _same(a, b):
        # Also right for the root (path ""), which can be replaced but never added or removed.
        ops.append({"op": "replace", "path": pointer(*at), "value": copy_json(b)})


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"a JSON Pointer starts with '/': {path!r}")
    return [unescape(t) for t in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdecimal() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"not an array index: {token!r}")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of range")
    return index


def apply(document: object, patch: list[PatchOp]) -> Any:
    """`document` with `patch` applied (add, remove, replace); the input is never modified."""
    doc: Any = copy_json(document)
    for op in patch:
        tokens = _tokens(op["path"])
        kind = op["op"]
        if not tokens:
            if kind == "remove":
                raise PatchError("cannot remove the document root")
            doc = copy_json(op["value"])
            continue
        parent: Any = doc
        for token in tokens[:-1]:
            if isinstance(parent, dict):
                if token not in parent:
                    raise PatchError(f"path {op['path']!r} does not exist")
                parent = parent[token]
            elif isinstance(parent, list):
                parent = parent[_index(parent, token, allow_end=False)]
            else:
                raise PatchError(f"path {op['path']!r} goes through a scalar")
        last = tokens[-1]
        if isinstance(parent, dict):
            if kind in ("remove", "replace") and last not in parent:
                raise PatchError(f"path {op['path']!r} does not exist")
            if kind == "remove":
                del parent[last]
            else:
                parent[last] = copy_json(op["value"])
        elif isinstance(parent, list):
            if kind == "add":
                parent.insert(_index(parent, last, allow_end=True), copy_json(op["value"]))
            elif kind == "remove":
                del parent[_index(parent, last, allow_end=False)]
            else:
                parent[_index(parent, last, allow_end=False)] = copy_json(op["value"])
        else:
            raise PatchError(f"path {op['path']!r} goes through a scalar")
    return doc
