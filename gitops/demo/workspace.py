"""The demo's throw-away deployment repo: the example stack's customizations copied from this
checkout (docs/example-stack.md), both clusters pointed at the sandbox, and the deliberate
break of a rollout."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from gitops.errors import UserError
from gitops.git import open_repo
from gitops.yamlio import dump_all_rt, load_all_rt

STACK_NAME = "mlstack"
UPSTREAM = Path("examples/upstream") / STACK_NAME
VENDOR = Path("vendor") / STACK_NAME
# The two example clusters and the namespace each one's objects land in on the shared
# API server (clusters/*/namespace.yaml).
NAMESPACES = {"microk8s-dev": "mlstack-dev", "eks-prod": "mlstack-prod"}
# The platform team's direct edits of vendor/mlstack (docs/example-stack.md, V1-V7).
EDITED_FILES = (
    "apps/dashboard/upstream/base/deployment.yaml",
    "apps/dashboard/upstream/base/kustomization.yaml",
    "apps/notebook-controller/upstream/manager/params.env",
    "common/metadata-db/base/kustomization.yaml",
    "example/kustomization.yaml",
)
ADDED_FILES = (
    "common/limit-range/base/kustomization.yaml",
    "common/limit-range/base/limit-range.yaml",
)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def copy_vendor_edits(project: Path, repo: Path) -> tuple[list[str], list[str]]:
    """Copy the checkout's vendor/mlstack files that differ from the pristine import over it;
    returns (edited, added), relative to vendor/mlstack."""
    src, dest = project / VENDOR, repo / VENDOR
    edited: list[str] = []
    added: list[str] = []
    for rel in _files(src):
        target = dest / rel
        if target.is_file() and filecmp.cmp(src / rel, target, shallow=False):
            continue
        (edited if target.exists() else added).append(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    return edited, added


def copy_tree(project: Path, repo: Path, rel: str) -> list[str]:
    """Copy a folder of the checkout (overlays/, clusters/NAME) into the repo."""
    shutil.copytree(project / rel, repo / rel, dirs_exist_ok=True)
    return [f"{rel}/{p}" for p in _files(project / rel)]


def _load(path: Path) -> tuple[str, Any]:
    text = path.read_text(encoding="utf-8")
    docs = load_all_rt(text, path=path)
    if len(docs) != 1 or not isinstance(docs[0], CommentedMap):
        raise UserError(f"{path} is not one YAML mapping.",
                        hint="Restore it from the checkout (git checkout -- that file).")
    return text, docs[0]


def point_at_sandbox(repo: Path, cluster: str, *, kubeconfig: Path, context: str) -> None:
    """Set cluster.yaml's kubeconfig and context to the sandbox's, and add the cluster's
    pre-bound volume Component (overlays/sandbox/CLUSTER: the sandbox has no provisioner)."""
    cfg = repo / "clusters" / cluster / "cluster.yaml"
    text, doc = _load(cfg)
    doc["kubeconfig"] = str(kubeconfig)
    doc.yaml_add_eol_comment("demo: the local sandbox plays this cluster", "kubeconfig")
    doc["context"] = context
    doc.yaml_add_eol_comment("the sandbox kubeconfig's context", "context")
    cfg.write_text(dump_all_rt([doc], like=text), encoding="utf-8")

    kus = repo / "clusters" / cluster / "kustomization.yaml"
    text, doc = _load(kus)
    components = doc.get("components")
    if not isinstance(components, CommentedSeq):
        components = CommentedSeq()
        doc["components"] = components
    entry = f"../../overlays/sandbox/{cluster}"
    if entry not in components:
        components.append(entry)
    kus.write_text(dump_all_rt([doc], like=text), encoding="utf-8")


def break_patch(fail_label: str, deployment: str) -> str:
    """A strategic-merge patch that labels a Deployment's pod template so that the sandbox
    keeps its pods crash-looping (docs/sandbox.md, 'Making a rollout fail on purpose')."""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {deployment}\n"
            f"spec:\n  template:\n    metadata:\n      labels:\n"
            f"        {fail_label}: \"true\"\n")


def add_break(repo: Path, cluster: str, *, fail_label: str, deployment: str) -> str:
    """Append the breaking patch to clusters/CLUSTER/kustomization.yaml; returns the old text
    so that `restore` can take the break out again."""
    kus = repo / "clusters" / cluster / "kustomization.yaml"
    text, doc = _load(kus)
    patches = doc.get("patches")
    if not isinstance(patches, CommentedSeq):
        patches = CommentedSeq()
        doc["patches"] = patches
    item = CommentedMap()
    item["patch"] = LiteralScalarString(break_patch(fail_label, deployment))
    patches.append(item)
    kus.write_text(dump_all_rt([doc], like=text), encoding="utf-8")
    return text


def restore(repo: Path, cluster: str, text: str) -> None:
    (repo / "clusters" / cluster / "kustomization.yaml").write_text(text, encoding="utf-8")


def commit_all(repo: Path, message: str) -> str:
    """Stage everything and commit on the current branch (what `git add -A && git commit`
    does), with stackctl's own git layer so that no git identity needs configuring."""
    return open_repo(repo).add_and_commit_all(message)


def current_branch(repo: Path) -> str | None:
    return open_repo(repo).current_branch()


def dirty_paths(repo: Path) -> list[str]:
    return open_repo(repo).dirty_paths()
