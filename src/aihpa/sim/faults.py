"""Fault injection for the simulated API server: errors, throttling, slow answers and broken watches on demand.

A `Fault` matches requests by verb, resource, subresource, namespace and name, and fires a bounded number of times.
The server consults `Faults.match` before handling each request. This module decides which fault applies; the HTTP
layer carries it out. It holds no I/O of its own.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

__all__ = ["Fault", "Faults"]

_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})


@dataclass
class Fault:
    """One injected fault.

    Matching (None matches anything): `verb` is one of get/list/watch/create/update/patch/delete/deletecollection;
    `resource` is a plural (`deployments`), a subresource (`deployments/scale`) or both (`deployments/*`); `group` is
    the API group (`""` for core, `metrics.k8s.io`); `namespace`, `name` narrow further.

    Effect: `status` answers with that HTTP code and a matching Status (409, 410, 429, 500, 503...), with a
    `Retry-After` header when `retry_after` is set; `delay` (real seconds) slows the answer first; for watches,
    `drop_after_events` ends the stream after that many events (`abort=True` cuts the connection instead of ending
    it cleanly), and `status=410` on a watch sends the `ERROR` event with `Expired`, as a too-old resume does.
    `times` is how many matching requests it affects (None: until removed).
    """

    verb: str | None = None
    resource: str | None = None
    group: str | None = None
    namespace: str | None = None
    name: str | None = None
    status: int | None = None
    message: str = "injected fault"
    retry_after: float | None = None
    delay: float = 0.0
    drop_after_events: int | None = None
    abort: bool = False
    times: int | None = None
    fired: int = field(default=0, init=False)
    id: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.verb is not None and self.verb not in _VERBS:
            raise ValueError(f"unknown verb {self.verb!r}; expected one of {sorted(_VERBS)}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"a fault status must be an HTTP error code, got {self.status}")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, *, verb: str, group: str, resource: str, namespace: str | None, name: str | None) -> bool:
        if self.verb is not None and self.verb != verb:
            return False
        if self.group is not None and self.group != group:
            return False
        if self.resource is not None:
            # "deployments" is the main resource only, "deployments/scale" one subresource, "deployments/*" all
            if self.resource.endswith("/*"):
                if resource.split("/")[0] != self.resource[:-2]:
                    return False
            elif self.resource != resource:
                return False
        if self.namespace is not None and self.namespace != namespace:
            return False
        return self.name is None or self.name == name


class Faults:
    """The active faults; the first one that matches a request (in the order added) applies."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, fault: Fault) -> Fault:
        fault.id = next(self._ids)
        self._faults.append(fault)
        return fault

    def inject(self, **kwargs: object) -> Fault:
        """`add(Fault(**kwargs))`."""
        return self.add(Fault(**kwargs))  # type: ignore[arg-type]

    def metrics_unavailable(self, *, times: int | None = None) -> Fault:
        """The metrics API answers 503, as when metrics-server is down."""
        return self.add(Fault(group="metrics.k8s.io", status=503, message="the server is currently unable to handle "
                              "the request (get pods.metrics.k8s.io)", times=times))

    def remove(self, fault: Fault) -> None:
        self._faults = [f for f in self._faults if f.id != fault.id]

    def clear(self) -> None:
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def match(
        self, *, verb: str, group: str, resource: str, namespace: str | None, name: str | None
    ) -> Fault | None:
        """The fault for this request, counted as fired; exhausted faults are dropped."""
        if not self._faults:
            return None  # the hot path: no faults configured
        for f in self._faults:
            if f.exhausted:
                continue
            if f.matches(verb=verb, group=group, resource=resource, namespace=namespace, name=name):
                f.fired += 1
                return f
        self._faults = [f for f in self._faults if not f.exhausted]
        return None
