"""Each decision that changes a count is one log line at info, with its fields; a steady workload is quiet."""

from __future__ import annotations

import json
import logging

import pytest

from aihpa.observability import JsonFormatter
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig

LOGGER = "aihpa.controller.actuation"
FIELDS = ("workload", "current", "desired", "kind", "mode", "applied", "reason", "limited_by")


def _decisions(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.getMessage().startswith("decision ")]


async def test_each_change_of_count_is_one_info_line_with_its_fields(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    manifest = deployment_manifest("web", replicas=2, labels={"aihpa/enabled": "true"}, cpu_request="500m",
                                   cpu_limit="1", annotations={"sim.aihpa.io/demand-cores": "0.8"})
    await rig.cluster.create(manifest)
    await rig.controller.wait_until(lambda: "default/web" in rig.controller.workloads)
    rig.forecaster.value = 7.0  # load is coming: the count goes up, in one step or several
    await rig.cycles(10)
    records = _decisions(caplog)
    fields = [{k: r.__dict__[k] for k in FIELDS} for r in records]
    assert all(f["workload"] == "default/web" and f["mode"] == "predictive" and f["reason"] for f in fields)
    info = [(r, f) for r, f in zip(records, fields, strict=True) if r.levelno == logging.INFO]
    debug = [f for r, f in zip(records, fields, strict=True) if r.levelno == logging.DEBUG]
    # at info: the first decision, and every one that changes the count; the rest (the count kept) at debug only
    assert [r for r, f in info[1:] if f["current"] == f["desired"]] == []
    assert debug and all(f["current"] == f["desired"] for f in debug)
    applied = [(r, f) for r, f in info if f["applied"]]
    scaled = [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") == "Scaled"]
    assert applied and len(applied) == len(scaled)
    record, f = applied[-1]
    assert f["desired"] > f["current"]
    assert record.getMessage() == (f"decision default/web: {f['current']} -> {f['desired']} replicas, applied "
                                   f"({f['kind']}, predictive mode): {f['reason']}")
    # as JSON: one line whose keys are the fields
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "info" and doc["message"] == record.getMessage()
    assert {k: doc[k] for k in FIELDS} == f
