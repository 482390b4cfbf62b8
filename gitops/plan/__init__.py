"""`stackctl plan`: what a change does to each cluster, for people (text, a pull-request
comment in markdown) and tools (JSON), with Secret values never shown.

    make_plan(stack, base=..., head=...)   render both commits per cluster, diff them
    plan_from_renders(before, after, ...)  the same from {cluster: objects} already rendered
    render_text / render_markdown / render_json
"""

from __future__ import annotations

from gitops.plan.build import clusters_at, make_plan, resolve_ref
from gitops.plan.jsonout import SCHEMA, plan_data, render_json
from gitops.plan.markdown import DEFAULT_MAX_BYTES, render_markdown
from gitops.plan.model import ClusterPlan, Plan, RefInfo, plan_from_renders
from gitops.plan.text import render_text

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SCHEMA",
    "ClusterPlan",
    "Plan",
    "RefInfo",
    "clusters_at",
    "make_plan",
    "plan_data",
    "plan_from_renders",
    "render_json",
    "render_markdown",
    "render_text",
    "resolve_ref",
]
