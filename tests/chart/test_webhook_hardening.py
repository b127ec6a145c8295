"""The webhook's exposure in the chart: its connection limits on the command line, and the opt-in NetworkPolicy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.chart.conftest import SUPPORTED_VERSIONS, Obj, Rendered, container_args, helm, validate_strictly
from tests.chart.test_render import parse_cli

Render = Callable[..., Rendered]

PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
CONTROL_PLANE = {"ipBlock": {"cidr": "10.0.0.0/24"}}


def policy_values(**network_policy: Any) -> Obj:
    return {"webhook": {"networkPolicy": {"enabled": True, **network_policy}}}


def test_the_webhook_command_line_carries_the_limits(render: Render) -> None:
    values = {"webhook": {"headerTimeoutSeconds": 3, "bodyTimeoutSeconds": 2.5, "maxConnections": 64}}
    args = parse_cli(container_args(render(values).one("Deployment", "aihpa-webhook")))
    assert (args.header_timeout, args.body_timeout, args.max_connections) == (3.0, 2.5, 64)


def test_the_default_limits_are_the_webhooks_own(render: Render) -> None:
    from aihpa.webhook.settings import WebhookSettings

    args = parse_cli(container_args(render().one("Deployment", "aihpa-webhook")))
    defaults = WebhookSettings()
    assert (args.header_timeout, args.body_timeout, args.max_connections) == (
        defaults.header_timeout_s, defaults.body_timeout_s, defaults.max_connections
    )


def test_no_network_policy_unless_asked(render: Render) -> None:
    assert render().of("NetworkPolicy") == []
    assert render({"webhook": {"enabled": False, "networkPolicy": {"enabled": True}}}).of("NetworkPolicy") == []


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize(
    "network_policy",
    [pytest.param({}, id="anywhere"), pytest.param({"from": [CONTROL_PLANE], "metricsFrom": [PROMETHEUS]}, id="peers")],
)
def test_the_network_policy_is_valid(render: Render, network_policy: Obj, version: str) -> None:
    validate_strictly(render(policy_values(**network_policy)).one("NetworkPolicy", "aihpa-webhook"), version)


def test_by_default_the_policy_admits_anyone_to_the_webhook_port_only_and_only_for_the_webhook_pods(
    render: Render,
) -> None:
    rendered = render({"webhook": {"port": 9443, "networkPolicy": {"enabled": True}}})
    policy = rendered.one("NetworkPolicy", "aihpa-webhook")
    webhook = rendered.one("Deployment", "aihpa-webhook")["spec"]["template"]
    controller = rendered.one("Deployment", "aihpa-controller")["spec"]["template"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= webhook["metadata"]["labels"].items()
    assert not selector.items() <= controller["metadata"]["labels"].items()
    # Ingress only: the webhook still reaches the API server for its profile ConfigMaps
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    # one rule, no peers (anyone), one port: the container's
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 9443, "protocol": "TCP"}]}]
    assert [p["containerPort"] for p in webhook["spec"]["containers"][0]["ports"]] == [9443]


def test_named_peers_replace_anywhere_and_metrics_peers_get_the_same_port(render: Render) -> None:
    policy = render(policy_values(**{"from": [CONTROL_PLANE], "metricsFrom": [PROMETHEUS]})).one("NetworkPolicy")
    port = [{"port": 8443, "protocol": "TCP"}]
    assert policy["spec"]["ingress"] == [{"ports": port, "from": [CONTROL_PLANE]},
                                         {"ports": port, "from": [PROMETHEUS]}]


def test_metrics_peers_add_nothing_when_anyone_is_admitted(render: Render) -> None:
    policy = render(policy_values(metricsFrom=[PROMETHEUS])).one("NetworkPolicy")
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8443, "protocol": "TCP"}]}]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(policy_values(**{"from": "10.0.0.0/8"}), id="from-not-a-list"),
        pytest.param(policy_values(**{"from": [{}]}), id="empty-peer"),
        pytest.param(policy_values(cidrs=["10.0.0.0/8"]), id="unknown-key"),
        pytest.param({"webhook": {"maxConnections": 0}}, id="no-connections"),
        pytest.param({"webhook": {"headerTimeoutSeconds": 0}}, id="zero-header-timeout"),
        pytest.param({"webhook": {"bodyTimeoutSeconds": "5s"}}, id="body-timeout-not-a-number"),
        pytest.param({"controller": {"admissionPolicy": {"enabled": "yes"}}}, id="policy-flag-not-a-bool"),
    ],
)
def test_the_schema_rejects_wrong_hardening_values(chart: Any, values: Obj) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
