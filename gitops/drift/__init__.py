"""`stackctl drift`: each cluster's live objects against its last applied revision, on the
fields stackctl applied (managedFields), and git's render against that revision.

    check_drift(targets, heal=...)         every cluster; -> DriftReport
    check_cluster(kube, cluster=...)       one cluster; -> ClusterDrift
    compare_object(desired, live, ...)     one object; -> FieldDrift per drifted field
    parse_fields_v1(fieldsV1)              a managedFields entry's field set
    render_text / render_markdown / render_json
"""

from __future__ import annotations

from gitops.drift.check import DriftTarget, check_cluster, check_drift, heal_cluster
from gitops.drift.compare import compare_object
from gitops.drift.fields import (
    FieldSet,
    Key,
    ManagedEntry,
    Value,
    managed_entries,
    parse_fields_v1,
)
from gitops.drift.jsonout import SCHEMA, drift_data, render_json
from gitops.drift.model import (
    ClusterDrift,
    DriftReport,
    FieldDrift,
    GitComparison,
    HealOutcome,
    Manager,
    ObjectDrift,
)
from gitops.drift.report import render_markdown, render_text

__all__ = [
    "SCHEMA",
    "ClusterDrift",
    "DriftReport",
    "DriftTarget",
    "FieldDrift",
    "FieldSet",
    "GitComparison",
    "HealOutcome",
    "Key",
    "ManagedEntry",
    "Manager",
    "ObjectDrift",
    "Value",
    "check_cluster",
    "check_drift",
    "compare_object",
    "drift_data",
    "heal_cluster",
    "managed_entries",
    "parse_fields_v1",
    "render_json",
    "render_markdown",
    "render_text",
]
