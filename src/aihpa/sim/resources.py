"""The resource types the simulated API server serves, and the discovery documents that describe them.

A `ResourceType` maps a REST path segment to a kind. Kinds without special behaviour are stored generically, so
`kubectl apply -f` of a rendered chart works for anything listed here (and for custom resources, which a
CustomResourceDefinition registers at run time). This module describes; it never stores objects or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aihpa.sim.types import Obj

__all__ = ["BUILTIN_TYPES", "Registry", "ResourceType"]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    categories: tuple[str, ...] = ()
    # served by the sim's own logic instead of the store (metrics.k8s.io)
    virtual: bool = False
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, as error messages name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> tuple[str, str]:
        """Storage identity: one store per (group, plural) whatever the version."""
        return (self.group, self.plural)

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def discovery_entries(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        out = [entry]
        for sub in self.subresources:
            if sub == "scale":
                out.append({
                    "name": f"{self.plural}/scale", "singularName": "", "namespaced": self.namespaced,
                    "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
                })
            else:
                out.append({
                    "name": f"{self.plural}/{sub}", "singularName": "", "namespaced": self.namespaced,
                    "kind": self.kind, "verbs": ["get", "patch", "update"],
                })
        return out


def _t(gv: str, kind: str, plural: str, **kw: Any) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group=group, version=version, kind=kind, plural=plural, **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",), subresources=("status",)),
    _t("v1", "Pod", "pods", short_names=("po",), subresources=("status",), categories=("all",)),
    _t("v1", "Service", "services", short_names=("svc",), subresources=("status",), categories=("all",)),
    _t("v1", "Endpoints", "endpoints", short_names=("ep",)),
    _t("v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _t("v1", "Secret", "secrets"),
    _t("v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _t("v1", "Event", "events", short_names=("ev",)),
    _t("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), subresources=("status",)),
    _t("v1", "ResourceQuota", "resourcequotas", short_names=("quota",), subresources=("status",)),
    _t("v1", "LimitRange", "limitranges", short_names=("limits",)),
    _t("v1", "Node", "nodes", namespaced=False, short_names=("no",), subresources=("status",)),
    _t("apps/v1", "Deployment", "deployments", short_names=("deploy",), subresources=("scale", "status"),
       categories=("all",)),
    _t("apps/v1", "StatefulSet", "statefulsets", short_names=("sts",), subresources=("scale", "status"),
       categories=("all",)),
    _t("apps/v1", "DaemonSet", "daemonsets", short_names=("ds",), subresources=("status",), categories=("all",)),
    _t("apps/v1", "ReplicaSet", "replicasets", short_names=("rs",), subresources=("scale", "status"),
       categories=("all",)),
    _t("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
       subresources=("status",), categories=("all",)),
    _t("batch/v1", "Job", "jobs", subresources=("status",), categories=("all",)),
    _t("batch/v1", "CronJob", "cronjobs", short_names=("cj",), subresources=("status",), categories=("all",)),
    _t("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",), subresources=("status",)),
    _t("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _t("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _t("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _t("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    _t("networking.k8s.io/v1", "Ingress", "ingresses", short_names=("ing",), subresources=("status",)),
    _t("coordination.k8s.io/v1", "Lease", "leases"),
    _t("events.k8s.io/v1", "Event", "events", short_names=("ev",)),
    _t("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
       namespaced=False),
    _t("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
       namespaced=False),
    _t("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False,
       short_names=("crd", "crds"), subresources=("status",)),
    _t("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", namespaced=False, short_names=("pc",)),
    _t("metrics.k8s.io/v1beta1", "PodMetrics", "pods", verbs=("get", "list"), virtual=True),
    _t("metrics.k8s.io/v1beta1", "NodeMetrics", "nodes", namespaced=False, verbs=("get", "list"), virtual=True),
)

# group versions served with no resources of their own, so that e.g. `autoscaling/v1` Scale is a known version
_EXTRA_VERSIONS: tuple[str, ...] = ()


class Registry:
    """Resource types by REST path and by kind; grows when CustomResourceDefinitions are created."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._versions: dict[str, list[str]] = {}
        for rt in BUILTIN_TYPES:
            self.add(rt)
        for gv in _EXTRA_VERSIONS:
            group, _, version = gv.rpartition("/")
            self._add_version(group, version, preferred=False)

    def _add_version(self, group: str, version: str, *, preferred: bool) -> None:
        versions = self._versions.setdefault(group, [])
        if version not in versions:
            if preferred:
                versions.insert(0, version)
            else:
                versions.append(version)

    def add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.api_version, rt.kind)] = rt
        self._add_version(rt.group, rt.version, preferred=True)

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k, rt in self._by_path.items() if rt.key == (group, plural)]:
            rt = self._by_path.pop(key)
            self._by_kind.pop((rt.api_version, rt.kind), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def builtin(self, api_version: str, kind: str) -> ResourceType:
        """A type every registry serves (the controllers of the simulated data plane rely on it); KeyError if not."""
        rt = self._by_kind.get((api_version, kind))
        if rt is None:
            raise KeyError(f"no built-in resource type {api_version} {kind}")
        return rt

    def has_group_version(self, group: str, version: str) -> bool:
        return version in self._versions.get(group, [])

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._by_path.items() if g == group and v == version]

    # ---- discovery documents -------------------------------------------------------------------------------

    def core_versions(self) -> Obj:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }

    def group_document(self, group: str) -> Obj | None:
        versions = self._versions.get(group)
        if not versions or not group:
            return None
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def group_list(self) -> Obj:
        groups = [doc for g in self._versions if g and (doc := self.group_document(g)) is not None]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> Obj | None:
        if not self.has_group_version(group, version):
            return None
        resources: list[dict[str, Any]] = []
        for rt in self.types_in(group, version):
            resources.extend(rt.discovery_entries())
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def crd_types(self, crd: Obj) -> list[ResourceType]:
        """The resource types a CustomResourceDefinition declares (served versions only)."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = str(spec.get("group", ""))
        plural = str(names.get("plural", ""))
        kind = str(names.get("kind", ""))
        if not (group and plural and kind):
            return []
        out = []
        for v in spec.get("versions") or []:
            if not v.get("served", True):
                continue
            subs = tuple(s for s in ("status", "scale") if s in (v.get("subresources") or {}))
            out.append(ResourceType(
                group=group, version=str(v.get("name")), kind=kind, plural=plural,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()), subresources=subs,
                categories=tuple(names.get("categories") or ()), singular=str(names.get("singular", "")),
            ))
        return out
