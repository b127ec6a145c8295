"""What the controller asks of a metrics backend: each workload's total usage, in cores or in its metric's unit.

A workload's usage is the sum over the pods that its Deployment's selector matches: CPU cores by default, or the value
of the named query it chose (`WorkloadRef.metric`, e.g. requests per second) in that query's unit. `None` means
unknown (the backend has no data for it, does not know its metric, or could not be asked): the controller treats that
as "do not scale down", never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from aihpa.errors import AihpaError
from aihpa.labels import Requirement, requirements, requirements_match, selector_to_string

__all__ = [
    "MetricsError",
    "MetricsSource",
    "WorkloadRef",
    "known_metrics",
    "selector_matches",
    "selector_to_string",
]


class MetricsError(AihpaError):
    """A metrics backend could not answer (temporary: the next cycle tries again)."""


@dataclass(frozen=True)
class WorkloadRef:
    """A Deployment as the metrics layer sees it."""

    namespace: str
    name: str
    # the Deployment's spec.selector (matchLabels / matchExpressions)
    selector: Mapping[str, Any] = field(default_factory=dict)
    # the named query its usage comes from (`aihpa/metric`); None: CPU cores
    metric: str | None = None

    @cached_property
    def key(self) -> str:
        # asked for many times a cycle for each of thousands of workloads: built once (the fields are frozen)
        return f"{self.namespace}/{self.name}"

    @cached_property
    def index_pair(self) -> tuple[str, str] | None:
        """One matchLabels pair of the selector (the first in order), to index workloads by: a pod with that label
        pair is a candidate; None when the selector has no matchLabels."""
        pairs = sorted(dict(self.selector.get("matchLabels") or {}).items())
        return pairs[0] if pairs else None

    @cached_property
    def requirements(self) -> tuple[Requirement, ...] | None:
        """The selector parsed once, to match the labels of many pods (`matches`); None for an empty selector, which
        matches nothing here (`selector_matches`). ValueError for an unknown operator (not kept: raised each time)."""
        return _parsed(self.selector)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """`selector_matches(self.selector, labels)`, with the selector parsed once."""
        reqs = self.requirements
        return reqs is not None and requirements_match(reqs, labels)


@runtime_checkable
class MetricsSource(Protocol):
    async def usage(self, workloads: Sequence[WorkloadRef], *, at: float | None = None) -> dict[str, float | None]:
        """Total usage per workload key at time `at` (default: now): CPU cores, or the value of the workload's
        metric. Unknown (also a metric the source does not serve) -> None."""
        ...


def known_metrics(source: object) -> frozenset[str]:
    """The metric names a source serves besides CPU (`metric_names`; none for a source without that attribute)."""
    names = getattr(source, "metric_names", None)
    return frozenset(names) if names else frozenset()


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a pod with `labels` belongs to a workload with this selector (`aihpa.labels.selector_matches`), except
    that an empty selector matches nothing here: a Deployment always has one (WorkloadRef's default `{}` means "not
    known"), and counting every pod of the namespace would be a silent disaster. ValueError for an unknown operator."""
    reqs = _parsed(selector)
    return reqs is not None and requirements_match(reqs, labels)


def _parsed(selector: Mapping[str, Any]) -> tuple[Requirement, ...] | None:
    """A Deployment's selector parsed (`aihpa.labels.requirements`), or None when it is empty: it matches nothing."""
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return None
    return requirements(selector)
