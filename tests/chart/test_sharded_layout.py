"""The chart's sharded layout (controller.shards): one Deployment per shard, each pod told its shard, a Lease and
profile ConfigMaps per shard in the RBAC, a disruption budget per shard, and the one-shard layout unchanged."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aihpa.controller.sharding import lease_name
from aihpa.controller_cli import _settings
from aihpa.profiles import configmap_name
from tests.chart.conftest import (
    CHART,
    CUSTOM_KINDS,
    NAMESPACE,
    RELEASE,
    SUPPORTED_VERSIONS,
    Obj,
    Rendered,
    container_args,
    helm,
    validate_strictly,
)
from tests.chart.test_render import parse_cli

Render = Callable[..., Rendered]
SHARD_LABEL = "aihpa/controller-shard"


def controllers(rendered: Rendered) -> list[Obj]:
    return [o for o in rendered.of("Deployment") if o["metadata"]["labels"].get("app.kubernetes.io/component")
            == "controller"]


def own_role_rule(rendered: Rendered, resource: str, verb: str) -> list[str]:
    role = rendered.one("Role", f"{RELEASE}-controller-own")
    names: list[str] = []
    for rule in role["rules"]:
        if resource in rule["resources"] and verb in rule["verbs"]:
            names += rule.get("resourceNames") or []
    return names


def test_one_shard_is_the_layout_of_one_controller(render: Render) -> None:
    rendered = render({})
    (deployment,) = controllers(rendered)
    assert deployment["metadata"]["name"] == f"{RELEASE}-controller"
    assert SHARD_LABEL not in deployment["spec"]["selector"]["matchLabels"]
    args = container_args(deployment)
    assert not any(a.startswith(("--shards", "--shard=")) for a in args)
    settings = _settings(parse_cli(args))
    assert (settings.shards, settings.shard) == (1, 0)
    assert own_role_rule(rendered, "leases", "update") == ["aihpa-controller"]
    assert own_role_rule(rendered, "leases", "update") == [lease_name(settings.lease_name, shard=0, shards=1)]
    assert rendered.one("PodDisruptionBudget", f"{RELEASE}-controller")["spec"]["selector"]["matchLabels"] == \
        deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("shards", [2, 3])
def test_each_shard_is_a_deployment_whose_pods_serve_it_on_its_own_lease(render: Render, shards: int) -> None:
    rendered = render({"controller": {"shards": shards, "replicas": 2}})
    deployments = controllers(rendered)
    assert [d["metadata"]["name"] for d in deployments] == [f"{RELEASE}-controller-shard-{i}" for i in range(shards)]
    leases = own_role_rule(rendered, "leases", "update")
    configmaps = own_role_rule(rendered, "configmaps", "update")
    for i, deployment in enumerate(deployments):
        assert deployment["spec"]["replicas"] == 2, "a holder and a standby per shard"
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector[SHARD_LABEL] == str(i)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        # the container's arguments, read by the CLI's own parser, make a replica of shard i of N
        settings = _settings(parse_cli(container_args(deployment)))
        assert (settings.shards, settings.shard) == (shards, i)
        assert lease_name(settings.lease_name, shard=i, shards=shards) in leases
        assert all(configmap_name(p, writer=(i, shards)) in configmaps for p in range(settings.profile_shards))
    assert len(leases) == shards
    # no pod is selected by two shards' Deployments
    selectors = [d["spec"]["selector"]["matchLabels"] for d in deployments]
    for d in deployments:
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert sum(s.items() <= labels.items() for s in selectors) == 1
    # the metrics Service reaches every shard's pods
    service = rendered.one("Service", f"{RELEASE}-controller")["spec"]["selector"]
    assert all(service.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in deployments)
    # a shard's scale write that lost a race reads the Deployment again
    cluster_role = rendered.one("ClusterRole", f"{RELEASE}-controller")
    verbs = next(r["verbs"] for r in cluster_role["rules"] if r["resources"] == ["deployments"])
    assert "get" in verbs and "patch" in verbs


def test_each_shard_has_its_own_disruption_budget(render: Render) -> None:
    rendered = render({"controller": {"shards": 3, "replicas": 2}})
    budgets = rendered.of("PodDisruptionBudget")
    controller_budgets = [b for b in budgets if b["metadata"]["name"].startswith(f"{RELEASE}-controller")]
    assert len(controller_budgets) == 3
    for deployment in controllers(rendered):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in controller_budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, deployment["metadata"]["name"]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_sharded_layout_passes_strict_validation(render: Render, version: str) -> None:
    rendered = render({"controller": {"shards": 3, "replicas": 2}}, kube_version=version)
    assert len(controllers(rendered)) == 3
    for obj in rendered.objects:
        if f"{obj['apiVersion']}/{obj['kind']}" not in CUSTOM_KINDS:
            validate_strictly(obj, version)


def test_the_notes_say_how_many_shards(render: Render) -> None:
    assert "3 shards of 2 replica(s), one leader each" in render({"controller": {"shards": 3}}).notes


@pytest.fixture(scope="module")
def schemaless_render(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Obj], Any]]:
    """Render a copy of the chart without values.schema.json, as `helm template --skip-schema-validation` does."""
    copy = Path(shutil.copytree(CHART, tmp_path_factory.mktemp("chart") / "aihpa"))
    (copy / "values.schema.json").unlink()
    with helm.Chart.load(copy) as chart:
        yield lambda values: chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@pytest.mark.parametrize("shards", [0, -2, 1.5])
def test_a_shard_count_below_one_or_fractional_is_refused(
    chart: Any, schemaless_render: Callable[[Obj], Any], shards: float
) -> None:
    values = {"controller": {"shards": shards}}
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmRenderError, match=r"controller\.shards must be a whole number of at least 1"):
        schemaless_render(values)


def test_shards_without_leader_election_are_refused(render: Render) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"controller.shards > 1 needs controller.leaderElection"):
        render({"controller": {"shards": 2, "replicas": 1, "leaderElection": False}})


def test_the_api_rate_limit_reaches_every_shard_and_is_left_out_by_default(render: Render) -> None:
    (plain,) = controllers(render({}))
    assert not any(a.startswith("--kube-api-") for a in container_args(plain))
    for deployment in controllers(render({"controller": {"shards": 2, "kubeApi": {"qps": 50.5, "burst": 3000000}}})):
        args = parse_cli(container_args(deployment))
        assert (args.kube_api_qps, args.kube_api_burst) == (50.5, 3_000_000)
    (unlimited,) = controllers(render({"controller": {"kubeApi": {"qps": 0}}}))
    assert parse_cli(container_args(unlimited)).kube_api_qps == 0
