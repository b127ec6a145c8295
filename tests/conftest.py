"""Shared fixtures: where the shared traces live, and a guard against leaked asyncio tasks."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_TRACES = ROOT.parent / "shared" / "data" / "traces"

# The demand column of each shared trace (PROVENANCE.md).
SHARED_TRACE_COLUMNS = {
    "wikipedia_pagecounts_2008_2009_1h.csv": "pageviews",
    "google2019_cluster_cpu_5min.csv": "avg_cpu",
    "azure2019_vm_total_cpu_5min.csv": "cpu_usage",
    "twitter_stream_2021_1min.csv": "events",
    "bitbrains_rnd_total_cpu_5min.csv": "cpu_usage_mhz_total",
}

# Server-side connection tasks belong to servers that fixtures own and close at teardown.
_FIXTURE_OWNED = ("RequestHandler.start", "RequestHandler._handle_request")


@pytest.fixture(scope="session")
def shared_traces() -> Path:
    if not SHARED_TRACES.is_dir():
        pytest.skip("../shared/data/traces is not beside the project")
    return SHARED_TRACES


def _guard_tasks(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = asyncio.all_tasks()
        result = await fn(*args, **kwargs)
        await asyncio.sleep(0)  # one loop tick so tasks cancelled by the test can finish cancelling
        leaked = [
            t
            for t in asyncio.all_tasks() - before
            if not t.done()
            and t is not asyncio.current_task()
            and not t.get_coro().__qualname__.endswith(_FIXTURE_OWNED)  # type: ignore[union-attr]
        ]
        assert not leaked, f"test left asyncio tasks running: {leaked}"
        return result

    return wrapper


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every async test fails if it leaves tasks that it started still running."""
    for item in items:
        fn = getattr(item, "obj", None)
        if fn is not None and inspect.iscoroutinefunction(fn):
            item.obj = _guard_tasks(fn)  # type: ignore[attr-defined]
