"""The chart refuses values that would render a release that cannot work: combinations the schema cannot express fail
`helm template` with a message naming the value, and the ranges the controller and the webhook refuse at start fail
even when the schema is skipped (`helm template --skip-schema-validation`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import CHART, NAMESPACE, RELEASE, Obj, Rendered, helm, validate_strictly

Render = Callable[..., Rendered]

#: Values each valid on its own (the schema accepts them) that contradict each other: the message `helm template`
#: fails with.
CONTRADICTIONS: dict[str, tuple[Obj, str]] = {
    "min replicas above max": (
        {"defaults": {"minReplicas": 5, "maxReplicas": 2}},
        r"defaults\.minReplicas \(5\) must not exceed defaults\.maxReplicas \(2\)",
    ),
    "controller budget keeps every pod": (
        {"controller": {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}}},
        r"controller\.podDisruptionBudget\.minAvailable \(2\) must be below controller\.replicas \(2\)",
    ),
    "webhook budget keeps every pod": (
        {"webhook": {"replicas": 3, "podDisruptionBudget": {"minAvailable": 5}}},
        r"webhook\.podDisruptionBudget\.minAvailable \(5\) must be below webhook\.replicas \(3\)",
    ),
    "budget of a hundred percent": (
        {"webhook": {"podDisruptionBudget": {"minAvailable": "100%"}}},
        r"webhook\.podDisruptionBudget\.minAvailable 100% lets no pod be evicted",
    ),
    "serving certificate outlives its CA": (
        {"certs": {"days": 400, "caDays": 365}},
        r"certs\.days \(400\) must not exceed certs\.caDays \(365\)",
    ),
    "cert-manager renews before issuing": (
        {"certs": {"mode": "cert-manager", "certManager": {"duration": "1h", "renewBefore": "1h30m"}}},
        r"certs\.certManager\.renewBefore \(1h30m\) must be shorter than certs\.certManager\.duration \(1h\)",
    ),
    "model volume without a path": (
        {"controller": {"model": {"volume": {"persistentVolumeClaim": {"claimName": "aihpa-models"}}}}},
        r"controller\.model\.volume needs controller\.model\.path",
    ),
    "model mounted over the history": (
        {"controller": {"history": {"enabled": True},
                        "model": {"path": "/var/lib/aihpa/", "volume": {"emptyDir": {}}}}},
        r'controller\.model\.path "/var/lib/aihpa/" is already a mount of the controller',
    ),
    "model path relative": (
        {"controller": {"model": {"path": "models"}}},
        r'controller\.model\.path must be an absolute path in the container, got "models"',
    ),
    "tag inside the repository": (
        {"image": {"repository": "registry.example.com:5000/aihpa:0.1.0"}},
        r'image\.repository "registry\.example\.com:5000/aihpa:0\.1\.0" carries a tag or digest',
    ),
    "prometheus without a url": (
        {"controller": {"metrics": {"source": "prometheus"}}},
        r"controller\.metrics\.source=prometheus needs controller\.metrics\.prometheus\.url",
    ),
    "two controllers without a lease": (
        {"controller": {"leaderElection": False}},
        r"controller\.replicas > 1 needs controller\.leaderElection",
    ),
}

#: Values the schema rejects and the controller or the webhook would refuse at start (a crash loop): the templates
#: refuse them too, with the schema skipped.
OUT_OF_RANGE: dict[str, tuple[Obj, str]] = {
    "zero min replicas": ({"defaults": {"minReplicas": 0}}, r"defaults\.minReplicas must be at least 1, got 0"),
    "max replicas above int32": (
        {"defaults": {"maxReplicas": 2**31}}, r"defaults\.maxReplicas must be at most 2147483647"),
    "utilization above one": (
        {"defaults": {"targetUtilization": 1.5}}, r"defaults\.targetUtilization must be in \(0, 1\]"),
    "utilization zero": ({"defaults": {"targetUtilization": 0}}, r"defaults\.targetUtilization must be in \(0, 1\]"),
    "stabilization above an hour": (
        {"defaults": {"scaleDownStabilizationSeconds": 3601}},
        r"defaults\.scaleDownStabilizationSeconds must be 0\.\.3600 or null \(the mode's own\), got 3601",
    ),
    "risk above a half": ({"controller": {"risk": 0.6}}, r"controller\.risk must be in \(0, 0\.5\] \(.*\), got 0\.6"),
    "negative risk": ({"controller": {"risk": -0.1}}, r"controller\.risk must be in \(0, 0\.5\]"),
    "sync period zero": ({"controller": {"syncPeriodSeconds": 0}}, r"controller\.syncPeriodSeconds must be positive"),
    "zero controller replicas": (
        {"controller": {"replicas": 0}}, r"controller\.replicas must be at least 1, got 0"),
    "zero webhook replicas": ({"webhook": {"replicas": 0}}, r"webhook\.replicas must be at least 1, got 0"),
    "controller port out of range": ({"controller": {"port": 70000}}, r"controller\.port must be 1\.\.65535"),
    "webhook port zero": ({"webhook": {"port": 0}}, r"webhook\.port must be 1\.\.65535, got 0"),
    "budget as a word": (
        {"controller": {"podDisruptionBudget": {"minAvailable": "one"}}},
        r'controller\.podDisruptionBudget\.minAvailable must be a number of pods or a percentage like 50%, got "one"',
    ),
}

#: The edges that must still render: each one step inside a limit above.
EDGES: dict[str, Obj] = {
    "min equal to max": {"defaults": {"minReplicas": 7, "maxReplicas": 7}},
    "budget one below the replicas": {"controller": {"replicas": 3, "podDisruptionBudget": {"minAvailable": 2}},
                                      "webhook": {"podDisruptionBudget": {"minAvailable": "99%"}}},
    "budget off with every pod kept": {"webhook": {"podDisruptionBudget": {"enabled": False, "minAvailable": 9}}},
    "one controller, budget not rendered": {"controller": {"replicas": 1, "leaderElection": False,
                                                           "podDisruptionBudget": {"minAvailable": 1}}},
    "certificate as long as its CA": {"certs": {"days": 3650, "caDays": 3650}},
    "cert-manager renewing half a second before expiry": {
        "certs": {"mode": "cert-manager", "certManager": {"duration": "1h", "renewBefore": "59m59.5s"}}},
    "self-made certificates ignore caDays": {"certs": {"mode": "self", "days": 400, "caDays": 365}},
    "no webhook, so no certificate checks": {"webhook": {"enabled": False}, "certs": {"days": 400, "caDays": 365}},
    "model in the image": {"controller": {"model": {"path": "/opt/models"}}},
    "model volume beside the mounts": {"controller": {"history": {"enabled": True}, "model": {
        "path": "/var/lib/aihpa-model", "volume": {"emptyDir": {}}}}},
    "registry with a port": {"image": {"repository": "registry.example.com:5000/team/aihpa", "tag": "0.1.0-rc1"}},
    "top of every range": {"defaults": {"targetUtilization": 1, "scaleDownStabilizationSeconds": 3600,
                                        "maxReplicas": 2**31 - 1},
                           "controller": {"risk": 0.5, "port": 65535}, "webhook": {"port": 1}},
}


def cases(table: dict[str, tuple[Obj, str]]) -> list[Any]:
    return [pytest.param(values, message, id=name) for name, (values, message) in table.items()]


@pytest.fixture(scope="module")
def schemaless_render(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Obj], Any]]:
    """Render a copy of the chart without values.schema.json, as `helm template --skip-schema-validation` does."""
    copy = Path(shutil.copytree(CHART, tmp_path_factory.mktemp("chart") / "aihpa"))
    (copy / "values.schema.json").unlink()
    with helm.Chart.load(copy) as chart:
        yield lambda values: chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@pytest.mark.parametrize(("values", "message"), cases(CONTRADICTIONS))
def test_contradicting_values_fail_the_render_with_a_message_naming_them(
    chart: Any, render: Render, values: Obj, message: str
) -> None:
    chart.validate_schema(values)  # each value is fine on its own: only the templates can see the contradiction
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


@pytest.mark.parametrize(("values", "message"), cases(OUT_OF_RANGE))
def test_values_the_aihpa_cli_refuses_fail_the_render_even_without_the_schema(
    chart: Any, schemaless_render: Callable[[Obj], Any], values: Obj, message: str
) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmRenderError, match=message):
        schemaless_render(values)


@pytest.mark.parametrize("values", [pytest.param(v, id=k) for k, v in EDGES.items()])
def test_values_at_the_edges_render_valid_objects(
    chart: Any, render: Render, schemaless_render: Callable[[Obj], Any], values: Obj
) -> None:
    chart.validate_schema(values)
    assert schemaless_render(values)
    rendered = render(values)
    for obj in rendered.objects:
        if obj["kind"] not in {"Issuer", "Certificate", "ServiceMonitor"}:
            validate_strictly(obj, "1.37.0")


def test_the_default_values_render_with_the_default_image(render: Render) -> None:
    rendered = render()
    images = {c["image"] for d in rendered.of("Deployment") for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"aihpa:0.1.0"}  # what `make image` builds: aihpa:<appVersion>
    for obj in rendered.objects:
        validate_strictly(obj, "1.37.0")
