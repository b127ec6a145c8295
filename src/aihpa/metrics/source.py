"""What the controller asks of a metrics backend: each workload's total CPU usage, in cores.

A workload's usage is the sum over the pods that its Deployment's selector matches. `None` means unknown (the
backend has no data for it, or could not be asked): the controller treats that as "do not scale down", never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aihpa.errors import AihpaError

__all__ = ["MetricsError", "MetricsSource", "WorkloadRef", "selector_matches", "selector_to_string"]


class MetricsError(AihpaError):
    """A metrics backend could not answer (temporary: the next cycle tries again)."""


@dataclass(frozen=True)
class WorkloadRef:
    """A Deployment as the metrics layer sees it."""

    namespace: str
    name: str
    # the Deployment's spec.selector (matchLabels / matchExpressions)
    selector: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@runtime_checkable
class MetricsSource(Protocol):
    async def usage(self, workloads: Sequence[WorkloadRef], *, at: float | None = None) -> dict[str, float | None]:
        """Total CPU cores per workload key at time `at` (default: now). Unknown -> None."""
        ...


def selector_to_string(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object as the label-selector query string the API server takes.

    Raises ValueError for an operator Kubernetes does not define.
    """
    parts = [f"{k}={v}" for k, v in sorted(dict(selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], list(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unknown label selector operator {op!r}")
    return ",".join(parts)


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy a LabelSelector object, as the API server decides it. An empty selector matches
    nothing here: a Deployment always has one, and matching every pod would be a silent disaster."""
    match = dict(selector.get("matchLabels") or {})
    exprs = list(selector.get("matchExpressions") or [])
    if not match and not exprs:
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in exprs:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown label selector operator {op!r}")
    return True
