"""`stackctl init`: scaffold a deployment repo (stack.yaml, vendor/, overlays/, clusters/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops import git
from gitops.errors import ConfigError
from gitops.source import is_url, open_source, spec_for_stack
from gitops.stack import (
    CLUSTERS_DIR,
    OVERLAYS_DIR,
    STACK_FILE,
    STATE_DIR,
    VENDOR_DIR,
    validate_name,
)
from gitops.yamlio import dump_safe


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: tuple[str, ...]  # files written, relative to root
    source: str  # the source as written into stack.yaml
    source_kind: str | None  # None for URLs (not contacted at init)
    commit: str | None  # the initial commit, when init created the repository
    new_repo: bool


STACK_HEADER = """\
# stack.yaml: the upstream this deployment repo tracks.
#   name    short name; the upstream lives in vendor/<name>/ and on the branch vendor/<name>
#   source  a git URL or local repository, a .tar.gz/.zip archive, a folder of release
#           archives named <anything>-<tag>.tar.gz, or a folder with one folder per tag
#   ref     the release to track: a tag, branch or commit, or v1.4 for the highest v1.4.x
# Import it with 'stackctl vendor import'; stackctl.lock then records what is vendored.
"""

STACK_OPTIONAL = """\

# Optional:
# mirrors:        # where remote bases the release pulls are fetched from (air-gapped sites);
#                 # STACKCTL_MIRRORS overrides it per prefix (docs/vendor.md, Air-gapped sites)
#   https://github.com/: file:///srv/mirrors/github.com/
"""

KUSTOMIZATION = """\
# The cluster {cluster}: what 'stackctl render --cluster {cluster}' builds.
# After 'stackctl vendor import', list the vendored upstream and your overlays, e.g.:
#   resources:
#   - ../../vendor/{name}/example
#   - ../../overlays/<your-overlay>
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: []
"""

CLUSTER_YAML = """\
# cluster.yaml: where and how stackctl applies clusters/{cluster}. Every key is optional;
# the commented values are the defaults.
description: the {cluster} cluster

# kubeconfig: ~/.kube/config        # default: $KUBECONFIG (its first file), then ~/.kube/config
# context: my-context               # default: the kubeconfig's current context
# recordsNamespace: stackctl-system # namespace of stackctl's revisions, inventory and lease
# wave: 0                           # rollout order in pipelines: lower waves go first
# apply:
#   timeout: 5m                     # bound of the health wait of one apply (s, m, h)
#   prune: true                     # delete objects that left the desired set
#   protectedKinds:                 # never pruned or rolled back unless allowed per object
#   - Namespace
#   - CustomResourceDefinition
#   - PersistentVolumeClaim
#   - PersistentVolume
#   concurrency: 8                  # objects applied at once within one phase
#   forceConflicts: false           # take over fields owned by other field managers
#   replace: auto                   # re-create objects whose immutable fields changed
#                                   # (auto), or refuse them (never): docs/apply.md
"""


def _source_for(source: str, root: Path, cwd: Path) -> tuple[str, str | None]:
    """The source for stack.yaml, and its kind; local paths must hold releases."""
    spec = spec_for_stack(source, root=root, cwd=cwd)
    if is_url(spec):
        return spec, None  # not contacted at init: the network may not be there yet
    return spec, open_source(str((root / spec).resolve())).kind


def init_stack(directory: Path, *, name: str, source: str, ref: str | None = None,
               cluster: str = "dev", cwd: Path | None = None) -> InitResult:
    """Scaffold a deployment repo in `directory` (created if needed), and make it a git
    repository with an initial commit unless it is inside one already."""
    validate_name(name, what="stack name")
    validate_name(cluster, what="cluster name")
    root = (cwd or Path.cwd()) / directory
    root = root.resolve()
    if (root / STACK_FILE).exists():
        raise ConfigError(
            f"{root / STACK_FILE} exists already; stackctl init does not overwrite it.",
            hint="Edit it instead, or run 'stackctl init' in another folder.",
        )
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file, not a folder")
    spec, kind = _source_for(source, root, (cwd or Path.cwd()).resolve())
    root.mkdir(parents=True, exist_ok=True)

    body = {"name": name, "source": spec}
    if ref:
        body["ref"] = ref
    stack_text = (STACK_HEADER + dump_safe(body) + ("" if ref else "# ref: v1.0\n")
                  + STACK_OPTIONAL)
    files = {
        STACK_FILE: stack_text,
        f"{VENDOR_DIR}/.gitkeep": "",
        f"{OVERLAYS_DIR}/.gitkeep": "",
        f"{CLUSTERS_DIR}/{cluster}/kustomization.yaml":
            KUSTOMIZATION.format(cluster=cluster, name=name),
        f"{CLUSTERS_DIR}/{cluster}/cluster.yaml": CLUSTER_YAML.format(cluster=cluster),
    }
    created: list[str] = []
    for rel, text in files.items():
        p = root / rel
        if p.exists():
            continue  # keep what is there (an existing overlay, a cluster)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        created.append(rel)
    ignore = root / ".gitignore"
    existing = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if f"{STATE_DIR}/" not in existing.splitlines():
        sep = "" if not existing or existing.endswith("\n") else "\n"
        ignore.write_text(f"{existing}{sep}# stackctl's local state (reports, caches)\n"
                          f"{STATE_DIR}/\n", encoding="utf-8")
        created.append(".gitignore")

    commit = None
    new_repo = git.find_repo(root) is None
    if new_repo:
        repo = git.init_repo(root)
        commit = repo.add_and_commit_all(f"stackctl init: {name} from {spec}")
    return InitResult(root=root, created=tuple(created), source=spec, source_kind=kind,
                      commit=commit, new_repo=new_repo)
