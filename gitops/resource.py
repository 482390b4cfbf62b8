"""A Kubernetes object's identity, as a value type shared by render, merge, apply and drift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def split_api_version(api_version: str) -> tuple[str, str]:
    """('apps', 'v1') for 'apps/v1'; ('', 'v1') for the core group's 'v1'."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


@dataclass(frozen=True, order=True)
class ResourceId:
    """Group, kind, namespace and name: what makes an object the same object across
    versions of a manifest, whatever file it lives in and whatever API version it uses.
    Cluster-scoped objects have namespace ''."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any], *, default_namespace: str = "") -> ResourceId:
        group, _ = split_api_version(str(obj.get("apiVersion") or ""))
        meta = obj.get("metadata") or {}
        return cls(
            group=group,
            kind=str(obj.get("kind") or ""),
            namespace=str(meta.get("namespace") or default_namespace),
            name=str(meta.get("name") or meta.get("generateName") or ""),
        )

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def __str__(self) -> str:
        """The usual CLI way of naming an object: Kind.group/name in namespace ns."""
        where = f" -n {self.namespace}" if self.namespace else ""
        return f"{self.group_kind}/{self.name}{where}"

    @property
    def key(self) -> str:
        """A stable, path-safe key: group_kind_namespace_name."""
        return "_".join((self.group or "core", self.kind, self.namespace or "_", self.name))
