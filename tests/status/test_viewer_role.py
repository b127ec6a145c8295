"""The chart's aihpa-viewer role grants what `aihpa status` sends (a list of Deployments, again each refresh of a
watch) and nothing that writes; scoped like the controller."""

from __future__ import annotations

from collections.abc import Callable

from tests.chart.conftest import Rendered, chart, render
from tests.chart.test_rbac_and_certs import rule, rules_of

__all__ = ["chart", "render"]

Render = Callable[..., Rendered]
VIEWER_RULES = {rule("apps", "deployments", "get list watch")}


def test_the_viewer_role_may_only_read_deployments_in_every_namespace(render: Render) -> None:
    rendered = render()
    role = rendered.one("ClusterRole", "aihpa-viewer")
    assert rules_of(role) == VIEWER_RULES
    assert role["metadata"]["labels"]["app.kubernetes.io/component"] == "viewer"
    # nothing is bound to it by the chart: an administrator binds it to people
    assert not any(b["roleRef"]["name"] == "aihpa-viewer"
                   for b in rendered.of("ClusterRoleBinding") + rendered.of("RoleBinding"))


def test_a_controller_for_one_namespace_gets_a_viewer_role_there(render: Render) -> None:
    rendered = render({"controller": {"watchNamespace": "shop"}})
    assert rendered.of("ClusterRole") == []
    role = rendered.one("Role", "aihpa-viewer")
    assert role["metadata"]["namespace"] == "shop" and rules_of(role) == VIEWER_RULES


def test_the_viewer_role_can_be_left_out(render: Render) -> None:
    rendered = render({"rbac": {"viewer": {"create": False}}})
    assert rendered.of("ClusterRole", "aihpa-viewer") == rendered.of("Role", "aihpa-viewer") == []
