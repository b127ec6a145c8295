"""What the controller asks of a metrics backend: each workload's total CPU usage, in cores.

A workload's usage is the sum over the pods that its Deployment's selector matches. `None` means unknown (the
backend has no data for it, or could not be asked): the controller treats that as "do not scale down", never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aihpa.errors import AihpaError
from aihpa.labels import selector_matches as labels_match
from aihpa.labels import selector_to_string

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


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a pod with `labels` belongs to a workload with this selector (`aihpa.labels.selector_matches`), except
    that an empty selector matches nothing here: a Deployment always has one (WorkloadRef's default `{}` means "not
    known"), and counting every pod of the namespace would be a silent disaster. ValueError for an unknown operator."""
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    return labels_match(selector, labels)
