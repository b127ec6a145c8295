"""What a controller process sets for itself, once, at start (the `aihpa controller` command does;
`benchmarks/bench_controller.py` measures with it): today, the cyclic garbage collector (its thresholds, and a
collection of the young generations at the end of each cycle).

A controller keeps a large, long-lived heap (tens of thousands of workloads, each with its slim Deployment and its
policy state) and replaces every workload's state at each model step. With CPython's default thresholds (700, 10,
10) those replacements bring a full collection about every model step, and a full collection walks every tracked
object of the heap: 0.4 s of a 2.2 CPU-second step at 2,000 workloads, growing with the heap. Almost everything the
controller frees goes by reference counting (its states hold no cycles), so collecting rarely loses nothing: a young
generation of 100,000 allocations (the thresholds Instagram and others run long-lived Python services with) makes
full collections rare, and what cycles there are (exceptions with their tracebacks, closed connections) are still
collected, later.

A tuned process also collects its two young generations at the end of every cycle (`after_cycle`), after the cycle's
writes: a model step leaves some 40 new objects per workload (its states), and whichever collection comes next walks
them all (0.2 s at 10,000 workloads). Left to the thresholds, that was the next sync's collection, in the middle of
the cycle that must react at once; collected at the end of the step that made them, they are in the old generation
before the next cycle starts. A library user keeps their own process's settings: nothing here runs on import.
`aihpa sim serve` sets the same thresholds: a served cluster holds every object of its store as long as it runs.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "after_cycle", "tune_garbage_collector"]

#: the cyclic collector's thresholds for a controller process (young allocations, then collections of each older
#: generation before the next one is collected)
GC_THRESHOLDS: tuple[int, int, int] = (100_000, 50, 100)


_tuned = False


def tune_garbage_collector() -> tuple[int, ...]:
    """Set the collector's thresholds for a controller process, and have `after_cycle` collect the young
    generations; returns the thresholds it had."""
    global _tuned
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    _tuned = True
    return before


def after_cycle() -> None:
    """The end of a controller cycle: in a tuned process (`tune_garbage_collector`), collect the two young
    generations, so that the objects the cycle kept move to the old one before the next cycle; otherwise nothing."""
    if _tuned:
        gc.collect(1)
