"""What a controller process sets for itself, once, at start (the `aihpa controller` command does;
`benchmarks/bench_controller.py` measures with it): today, the cyclic garbage collector's thresholds.

A controller keeps a large, long-lived heap (tens of thousands of workloads, each with its slim Deployment and its
policy state) and replaces every workload's state at each model step. With CPython's default thresholds (700, 10,
10) those replacements bring a full collection about every model step, and a full collection walks every tracked
object of the heap: 0.4 s of a 2.2 CPU-second step at 2,000 workloads, growing with the heap. Almost everything the
controller frees goes by reference counting (its states hold no cycles), so collecting rarely loses nothing: a young
generation of 100,000 allocations (the thresholds Instagram and others run long-lived Python services with) makes
full collections rare, and what cycles there are (exceptions with their tracebacks, closed connections) are still
collected, later. A library user keeps their own process's settings: nothing here runs on import.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_garbage_collector"]

#: the cyclic collector's thresholds for a controller process (young allocations, then collections of each older
#: generation before the next one is collected)
GC_THRESHOLDS: tuple[int, int, int] = (100_000, 50, 100)


def tune_garbage_collector() -> tuple[int, ...]:
    """Set the collector's thresholds for a controller process; returns the ones it had."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    return before
