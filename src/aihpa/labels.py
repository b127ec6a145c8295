"""Kubernetes `LabelSelector` objects (`matchLabels` + `matchExpressions`): matching labels, and the query string.

The one implementation for the controller's metrics adapters and the simulator. A leaf module (it imports nothing of
aihpa). Pure: no I/O.

Semantics follow `metav1.LabelSelectorAsSelector`: an empty selector (`{}`) matches everything, an absent one (None)
matches nothing, and an operator Kubernetes does not define is an error (ValueError), whatever the labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OPERATORS", "Requirement", "requirements", "requirements_match", "selector_matches",
           "selector_to_string"]

#: The matchExpressions operators Kubernetes defines.
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

#: One requirement of a selector: (key, operator, values); a matchLabels pair is operator "=" with its one value.
Requirement = tuple[str, str, tuple[str, ...]]


def requirements(selector: Mapping[str, Any]) -> tuple[Requirement, ...]:
    """(key, operator, values) for every matchLabels pair (operator "=") and matchExpression, in order; ValueError
    for an operator Kubernetes does not define. Parse a selector once to match it against many label sets
    (`requirements_match`)."""
    match_labels = sorted(dict(selector.get("matchLabels") or {}).items())
    reqs: list[Requirement] = [(str(k), "=", (str(v),)) for k, v in match_labels]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        if op not in OPERATORS:
            raise ValueError(f"unknown label selector operator {op!r}")
        reqs.append((str(expr.get("key", "")), op, tuple(str(v) for v in expr.get("values") or [])))
    return tuple(reqs)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy a LabelSelector object: None matches nothing, `{}` everything."""
    if selector is None:
        return False
    return requirements_match(requirements(selector), labels)


def requirements_match(reqs: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy every requirement of a parsed selector (`requirements`; none: everything)."""
    for key, op, values in reqs:
        present = key in labels
        if op in ("=", "In"):
            ok = present and labels[key] in values
        elif op == "NotIn":
            ok = not present or labels[key] not in values
        else:
            ok = present if op == "Exists" else not present
        if not ok:
            return False
    return True


def selector_to_string(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object as the `labelSelector` query string the API server takes (it selects the same labels).

    Raises ValueError for an operator Kubernetes does not define.
    """
    parts = []
    for key, op, values in requirements(selector):
        if op == "=":
            parts.append(f"{key}={values[0]}")
        elif op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        else:
            parts.append(key if op == "Exists" else f"!{key}")
    return ",".join(parts)
