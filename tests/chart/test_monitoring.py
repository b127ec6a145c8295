"""The chart's Grafana dashboard and PrometheusRule: opt-in, shaped as Grafana's sidecar and the Prometheus Operator
expect, every PromQL expression accepted by the real `promtool`, naming only metrics aihpa exports, the dashboard's
queries answered by a real Prometheus over the exposition of aihpa's own metric objects, and the alerts firing after
their `for` and not before in promtool's rule unit tests (Prometheus's own rule engine)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from aihpa.observability import ControllerMetrics
from aihpa.webhook.server import WebhookMetrics
from tests.chart.conftest import CHART, ROOT, SUPPORTED_VERSIONS, Obj, Rendered, validate_strictly

INSTALL = "apt-get install prometheus"
DASHBOARD_FILE = CHART / "dashboards" / "aihpa.json"
BOTH = {"monitoring": {"dashboards": {"enabled": True}, "prometheusRule": {"enabled": True}}}
RULE_KEYS = {"alert", "expr", "for", "labels", "annotations"}


def _load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_dashboard", ROOT / "hack" / "render-dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


renderer = _load_renderer()


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail(f"promtool is not installed: `{INSTALL}` (hack/ensure-test-deps.sh does it for `make test`)")
    return found


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def rules_of(rendered: Rendered) -> list[Obj]:
    return [rule for group in rendered.one("PrometheusRule")["spec"]["groups"] for rule in group["rules"]]


def alert(rendered: Rendered, name: str) -> Obj:
    found = [r for r in rules_of(rendered) if r.get("alert") == name]
    assert len(found) == 1, name
    return found[0]


def variable_selectors() -> list[tuple[str, str]]:
    """(name, series selector) of each query variable: label_values(<selector>, <label>) asks PromQL's selector."""
    found = []
    for v in dashboard()["templating"]["list"]:
        if v["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["query"]["query"])
            assert match, v["query"]
            found.append((v["name"], match[1]))
    return found


def exported_names() -> set[str]:
    """Every series name the controller's and the webhook's registries can expose, histogram and counter suffixes
    included, whether or not a child exists yet."""
    names: set[str] = set()
    registries: list[CollectorRegistry] = [ControllerMetrics().registry, WebhookMetrics().registry]
    for registry in registries:
        for family in registry.collect():
            suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                        "gauge": ("",)}[family.type]
            names.update(family.name + suffix for suffix in suffixes)
    return names


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
             "unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects: identifiers outside strings, label matchers, grouping lists and
    range brackets that do not call a function."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    found = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if match[2] is None and match[1].lower() not in _KEYWORDS:
            found.add(match[1])
    return found


def test_metric_names_reads_selectors_and_skips_functions_labels_and_keywords() -> None:
    expr = ('sum by (reason) (rate(aihpa_decisions_total{reason="x y"}[5m]) * on (instance) group_left () '
            '(aihpa_leader == 1)) / time() > bool 0 unless absent(other_metric offset 1m)')
    assert metric_names(expr) == {"aihpa_decisions_total", "aihpa_leader", "other_metric"}


# --- rendering ------------------------------------------------------------------------------------------------------


def test_dashboards_and_alerts_are_off_by_default(render: Callable[..., Rendered]) -> None:
    rendered = render()
    assert rendered.of("PrometheusRule") == []
    assert [c for c in rendered.of("ConfigMap") if "aihpa.json" in (c.get("data") or {})] == []


def test_the_dashboard_configmap_carries_the_dashboard_json_for_the_grafana_sidecar(
    render: Callable[..., Rendered],
) -> None:
    rendered = render(BOTH)
    cm = rendered.one("ConfigMap", "aihpa-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "aihpa"
    assert json.loads(cm["data"]["aihpa.json"]) == dashboard()
    for version in SUPPORTED_VERSIONS:
        validate_strictly(cm, version)


def test_the_sidecar_label_namespace_and_folder_are_configurable(render: Callable[..., Rendered]) -> None:
    rendered = render({"monitoring": {"dashboards": {
        "enabled": True, "labels": {"grafana_dashboard": None, "find_me": "yes"}, "namespace": "monitoring",
        "annotations": {"grafana_folder": "aihpa"}}}})
    meta = rendered.one("ConfigMap", "aihpa-dashboard")["metadata"]
    assert meta["labels"]["find_me"] == "yes" and "grafana_dashboard" not in meta["labels"]
    assert meta["namespace"] == "monitoring"
    assert meta["annotations"] == {"grafana_folder": "aihpa"}


def test_the_dashboard_has_the_panels_and_variables_the_chart_promises() -> None:
    d = dashboard()
    titles = {p["title"] for p in d["panels"]}
    assert {"Forecast band vs usage", "Replicas vs the reactive recommendation", "Realized saturation vs risk",
            "Decisions by kind", "Model in use", "Errors"} <= titles
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource", "namespace", "deployment"]
    exprs = " ".join(e for _, _, e in renderer.dashboard_targets(d))
    for quantile in ("p50", "p90", "p99"):
        assert quantile in exprs
    for panel in d["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))


def test_the_prometheus_rule_has_the_operators_shape_and_every_alert_explains_itself(
    render: Callable[..., Rendered],
) -> None:
    rendered = render(BOTH)
    rule = rendered.one("PrometheusRule", "aihpa")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    alerts = rules_of(rendered)
    assert {a["alert"] for a in alerts} == {
        "AihpaSaturationAboveRisk", "AihpaForecastsFailing", "AihpaMostlyFallingBack", "AihpaNoLeader",
        "AihpaScaleWritesFailing", "AihpaWebhookCertificateExpiring", "AihpaWebhookFailingOpen"}
    for a in alerts:
        assert set(a) <= RULE_KEYS and isinstance(a["expr"], str), a["alert"]
        assert set(a["annotations"]) == {"summary", "description", "runbook"}, a["alert"]
        assert all(isinstance(v, str) and v for v in a["annotations"].values()), a["alert"]
        assert a["labels"] == {"severity": "warning"}
    assert alert(rendered, "AihpaSaturationAboveRisk")["for"] == "30m"
    assert alert(rendered, "AihpaNoLeader")["for"] == "10m"
    assert "14 * 86400" in alert(rendered, "AihpaWebhookCertificateExpiring")["expr"]


def test_the_alert_thresholds_and_labels_come_from_the_values(render: Callable[..., Rendered]) -> None:
    rendered = render({"webhook": {"enabled": False}, "monitoring": {"prometheusRule": {
        "enabled": True, "saturationFor": "45m", "noLeaderFor": "3m", "fallbackShare": 0.8, "severity": "page",
        "alertLabels": {"team": "platform"}, "labels": {"release": "kube-prometheus"}, "namespace": "monitoring"}}})
    rule = rendered.one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    assert rule["metadata"]["namespace"] == "monitoring"
    assert alert(rendered, "AihpaSaturationAboveRisk")["for"] == "45m"
    assert alert(rendered, "AihpaNoLeader")["for"] == "3m"
    assert alert(rendered, "AihpaMostlyFallingBack")["expr"].rstrip().endswith("> 0.8")
    assert all(a["labels"] == {"severity": "page", "team": "platform"} for a in rules_of(rendered))
    assert not [a for a in rules_of(rendered) if "Webhook" in a["alert"]]  # no webhook, no webhook alerts


@pytest.mark.parametrize(("values", "where"), [
    ({"prometheusRule": {"enabled": True, "saturationFor": "30 min"}}, "/monitoring/prometheusRule/saturationFor"),
    ({"prometheusRule": {"enabled": True, "certificateExpiryDays": 0}}, "/monitoring/prometheusRule/certificateExp"),
    ({"prometheusRule": {"enabled": True, "fallbackShare": 1.5}}, "/monitoring/prometheusRule/fallbackShare"),
    ({"dashboards": {"enabled": True, "labels": {"grafana_dashboard": 1}}}, "/monitoring/dashboards/labels"),
    ({"dashboard": {"enabled": True}}, "'dashboard'"),
])
def test_the_schema_rejects_bad_monitoring_values(render: Callable[..., Rendered], values: Obj, where: str) -> None:
    with pytest.raises(Exception, match="schema") as raised:
        render({"monitoring": values})
    assert where in str(raised.value)


# --- promtool -------------------------------------------------------------------------------------------------------


def _check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_every_rule_and_dashboard_expression_passes_promtool_check_rules(
    render: Callable[..., Rendered], tmp_path: Path,
) -> None:
    rendered = render(BOTH)
    groups = list(rendered.one("PrometheusRule")["spec"]["groups"])
    targets = renderer.dashboard_targets(dashboard())
    recorded = [{"record": f"aihpa:dashboard:{i}", "expr": renderer.substitute(expr)}
                for i, (_, _, expr) in enumerate(targets)]
    variables = [{"record": f"aihpa:dashboard:{name}", "expr": renderer.substitute(selector)}
                 for name, selector in variable_selectors()]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [*groups, {"name": "dashboard", "rules": recorded + variables}]}))
    checked = _check_rules(rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    total = sum(len(g["rules"]) for g in groups) + len(recorded) + len(variables)
    assert f"SUCCESS: {total} rules found" in checked.stdout + checked.stderr

    # the check is real: a broken expression fails it
    rules.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [
        {"record": "aihpa:broken", "expr": recorded[0]["expr"] + " by"}]}]}))
    assert _check_rules(rules).returncode != 0


def test_every_metric_the_rules_and_the_dashboard_name_is_exported(render: Callable[..., Rendered]) -> None:
    exported = exported_names()
    assert {"aihpa_cycle_duration_seconds_bucket", "aihpa_webhook_admissions_total", "aihpa_leader"} <= exported
    exprs = [a["expr"] for a in rules_of(render(BOTH))]
    exprs += [e for _, _, e in renderer.dashboard_targets(dashboard())]
    exprs += [selector for _, selector in variable_selectors()]
    for expr in exprs:
        named = metric_names(expr)
        assert named, expr
        assert named <= exported, f"{expr}: {named - exported} not exported"


# --- a real Prometheus over the sample --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Prometheus on 127.0.0.1 serving six hours of the exposition of real ControllerMetrics and WebhookMetrics
    objects (hack/render-dashboard.py's sample run), backfilled with promtool."""
    promtool()
    if not shutil.which("prometheus"):
        pytest.fail(f"prometheus is not installed: `{INSTALL}` (hack/ensure-test-deps.sh does it for `make test`)")
    with renderer.sample_prometheus(tmp_path_factory.mktemp("sample")) as prom:
        yield prom


@pytest.mark.slow
def test_every_dashboard_query_returns_series_from_a_real_prometheus(sample: Any) -> None:
    for title, legend, expr in renderer.dashboard_targets(dashboard()):
        series = sample.query_range(renderer.substitute(expr))
        assert series, f"{title}: {expr} returned nothing"
        if "{{" in legend:  # every label a legend names is on the series
            wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
            assert all(wanted <= set(s["metric"]) for s in series), (title, legend)
    # the variables' label_values queries find the sample's workloads
    replicas = sample.query("aihpa_replicas", at=sample.end)
    assert {(s["metric"]["namespace"], s["metric"]["deployment"]) for s in replicas} == {
        ("shop", "web"), ("shop", "checkout")}


@pytest.mark.slow
def test_the_alert_expressions_pick_out_what_is_wrong_in_the_sample(
    render: Callable[..., Rendered], sample: Any,
) -> None:
    rendered = render(BOTH)

    def firing(name: str) -> list[dict[str, str]]:
        return [s["metric"] for s in sample.query(alert(rendered, name)["expr"], at=sample.end)]

    # shop/web's stand-in forecast misses bursts: its saturated share ends above its 1% risk; checkout's does not
    assert firing("AihpaSaturationAboveRisk") == [{"namespace": "shop", "deployment": "web"}]
    assert firing("AihpaNoLeader") == []
    assert firing("AihpaWebhookCertificateExpiring") == []
    assert firing("AihpaWebhookFailingOpen") == []
    # the forecast failed in minutes 250-254 only
    failures = renderer.FORECAST_FAILURES
    assert firing("AihpaForecastsFailing") == []
    during = sample.query(alert(rendered, "AihpaForecastsFailing")["expr"],
                          at=sample.start + (failures.stop - 1) * renderer.STEP_S)
    assert len(during) == 1


def test_the_dashboard_picture_is_drawn_from_the_json(sample: Any, tmp_path: Path) -> None:
    out = renderer.render(dashboard(), sample, tmp_path / "dashboard.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 50_000
    assert (ROOT / "examples" / "dashboard.png").is_file()


# --- promtool rule unit tests: the `for` of each alert --------------------------------------------------------------


def _expanded(annotations: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    return {k: re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m[1]], v) for k, v in annotations.items()}


def _case(rule: Obj, *, series: list[dict[str, str]], quiet_at: str, firing_at: str, labels: dict[str, str]) -> Obj:
    """A promtool test: the alert is not firing at `quiet_at` and fires at `firing_at` with these labels."""
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": quiet_at, "alertname": rule["alert"], "exp_alerts": []},
            {"eval_time": firing_at, "alertname": rule["alert"], "exp_alerts": [{
                "exp_labels": {**rule["labels"], **labels},
                "exp_annotations": _expanded(rule["annotations"], labels)}]},
        ],
    }


def _unit_tests(rendered: Rendered) -> list[Obj]:
    a = {r["alert"]: r for r in rules_of(rendered)}
    web, checkout = 'namespace="shop",deployment="web"', 'namespace="shop",deployment="checkout"'
    return [
        # shop/web's share crosses its risk at minute 11: not firing 29 minutes later, firing 31 minutes later
        _case(a["AihpaSaturationAboveRisk"], quiet_at="40m", firing_at="42m",
              labels={"namespace": "shop", "deployment": "web"}, series=[
                  {"series": f'aihpa_saturated_share{{{web},instance="a"}}', "values": "0.005x10 0.03x60"},
                  {"series": f'aihpa_saturated_share{{{web},instance="b"}}', "values": "0.004x70"},
                  {"series": f'aihpa_saturation_risk{{{web},instance="a"}}', "values": "0.01x70"},
                  {"series": f'aihpa_saturation_risk{{{web},instance="b"}}', "values": "0.01x70"},
                  {"series": f'aihpa_saturated_share{{{checkout},instance="a"}}', "values": "0.009x70"},
                  {"series": f'aihpa_saturation_risk{{{checkout},instance="a"}}', "values": "0.01x70"}]),
        # the leader steps down at minute 6 and nobody takes over
        _case(a["AihpaNoLeader"], quiet_at="14m", firing_at="18m", labels={}, series=[
            {"series": 'aihpa_leader{instance="a"}', "values": "1x5 0x30"},
            {"series": 'aihpa_leader{instance="b"}', "values": "0x35"}]),
        # nothing scrapes the controller at all
        _case(a["AihpaNoLeader"], quiet_at="8m", firing_at="12m", labels={}, series=[
            {"series": 'aihpa_webhook_connections{instance="w"}', "values": "1x30"}]),
        _case(a["AihpaForecastsFailing"], quiet_at="10m", firing_at="20m", labels={}, series=[
            {"series": 'aihpa_errors_total{kind="forecast",instance="a"}', "values": "0+1x40"},
            {"series": 'aihpa_errors_total{kind="scale",instance="a"}', "values": "0x40"}]),
        _case(a["AihpaScaleWritesFailing"], quiet_at="10m", firing_at="20m", labels={}, series=[
            {"series": 'aihpa_errors_total{kind="scale",instance="a"}', "values": "0+1x40"}]),
        _case(a["AihpaMostlyFallingBack"], quiet_at="50m", firing_at="95m", labels={}, series=[
            {"series": 'aihpa_decisions_total{reason="fallback",instance="a"}', "values": "0+3x120"},
            {"series": 'aihpa_decisions_total{reason="forecast",instance="a"}', "values": "0+1x120"}]),
        # 10 days left (under 14) from the start; a second pod with 300 days left does not hide it
        _case(a["AihpaWebhookCertificateExpiring"], quiet_at="5m", firing_at="15m", labels={}, series=[
            {"series": 'aihpa_webhook_certificate_expiry_timestamp_seconds{instance="w1"}', "values": "864000x30"},
            {"series": 'aihpa_webhook_certificate_expiry_timestamp_seconds{instance="w2"}', "values": "25920000x30"}]),
        _case(a["AihpaWebhookFailingOpen"], quiet_at="10m", firing_at="20m", labels={}, series=[
            {"series": 'aihpa_webhook_admissions_total{outcome="failed_open",instance="w1"}', "values": "0+1x40"},
            {"series": 'aihpa_webhook_admissions_total{outcome="mutated",instance="w1"}', "values": "0+9x40"}]),
    ]


def _test_rules(tmp_path: Path, rendered: Rendered, tests: list[Obj]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered.one("PrometheusRule")["spec"]))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    return subprocess.run([promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


def test_each_alert_fires_after_its_for_and_not_before_in_promtool_rule_tests(
    render: Callable[..., Rendered], tmp_path: Path,
) -> None:
    rendered = render(BOTH)
    tests = _unit_tests(rendered)
    assert {t["alert_rule_test"][0]["alertname"] for t in tests} == {a["alert"] for a in rules_of(rendered)}
    result = _test_rules(tmp_path, rendered, tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_saturation_alert_does_not_fire_before_thirty_minutes(
    render: Callable[..., Rendered], tmp_path: Path,
) -> None:
    """The same series and a wrong expectation (firing 28 minutes into the breach): promtool must fail it."""
    rendered = render(BOTH)
    slo = _unit_tests(rendered)[0]
    slo["alert_rule_test"][1]["eval_time"] = "39m"
    result = _test_rules(tmp_path, rendered, [slo])
    assert result.returncode != 0
    assert "AihpaSaturationAboveRisk" in result.stdout + result.stderr
