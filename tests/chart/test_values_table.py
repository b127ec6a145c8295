"""values.yaml documents every value, the schema knows every value, and the README's values table is current."""

from __future__ import annotations

import json
from typing import Any

from tests.chart.conftest import CHART
from tests.chart.values_table import BEGIN, END, documented_values, values_table

VALUES = (CHART / "values.yaml").read_text()


def test_every_value_has_a_comment() -> None:
    values = documented_values(VALUES)
    assert len(values) > 50
    assert [v.path for v in values if not v.description] == []


def test_the_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    for value in documented_values(VALUES):
        node: Any = schema
        for key in value.path.split("."):
            assert key in node.get("properties", {}), f"{value.path}: no schema for {key}"
            node = node["properties"][key]


def test_the_readme_values_table_is_current() -> None:
    readme = (CHART / "README.md").read_text()
    current = readme.partition(BEGIN)[2].partition(END)[0].strip()
    assert current == values_table(VALUES).strip(), "run: python -m tests.chart.values_table"
