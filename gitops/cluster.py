"""Clusters of a deployment repo: `clusters/<name>/kustomization.yaml` and `cluster.yaml`.

cluster.yaml (optional; every key has a default):

    kubeconfig: ~/.kube/config        # default: $KUBECONFIG, then ~/.kube/config
    context: microk8s                 # default: the kubeconfig's current context
    identity: 5f0c...                 # the cluster's kube-system namespace uid, pinned by
                                      # 'stackctl pin': another cluster is refused
    recordsNamespace: stackctl-system # where revisions, the inventory and the lease live
    wave: 0                           # rollout order in pipelines: lower waves go first
    apply:
      timeout: 5m                     # health wait bound for one apply (s, m, h)
      prune: true                     # delete objects that left the desired set
      protectedKinds: [Namespace, CustomResourceDefinition, PersistentVolumeClaim,
                       PersistentVolume]   # never pruned or rolled back unless allowed
      concurrency: 8                  # objects applied at once within one phase
      forceConflicts: false           # take over fields owned by other managers
      replace: auto                   # re-create objects whose immutable fields changed
                                      # (auto), or refuse them (never): docs/apply.md
      stopTimeout: 20s                # an apply stopped by SIGINT/SIGTERM waits this long
                                      # for its rollback to be healthy before it exits
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from gitops.errors import ConfigError
from gitops.repopath import inside, physically_inside
from gitops.schema import Field, load_config
from gitops.stack import CLUSTERS_DIR, Stack, validate_name

CLUSTER_FILE = "cluster.yaml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

DEFAULT_PROTECTED_KINDS = (
    "Namespace", "CustomResourceDefinition", "PersistentVolumeClaim", "PersistentVolume",
)

APPLY_SPEC = {
    "timeout": Field((str, int), doc="A duration such as 300s, 5m or 1h."),
    "prune": Field((bool,)),
    "protectedKinds": Field((list,), items=(str,)),
    "concurrency": Field((int,)),
    "forceConflicts": Field((bool,)),
    "replace": Field((str,), choices=("auto", "never"),
                     doc="auto (re-create objects whose immutable fields changed) or never."),
    "stopTimeout": Field((str, int), doc="A duration such as 20s."),
}

CLUSTER_SPEC = {
    "kubeconfig": Field((str,), doc="Path of the kubeconfig file, e.g. ~/.kube/config."),
    "context": Field((str,)),
    "identity": Field((str,), doc="The uid of the cluster's kube-system namespace, as "
                      "'stackctl pin --cluster NAME' writes it."),
    "recordsNamespace": Field((str,)),
    "wave": Field((int,)),
    "description": Field((str,)),
    "apply": Field((dict,), fields=APPLY_SPEC),
}

_DURATION = re.compile(r"^(\d+)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: str | int, *, what: str = "duration") -> float:
    """Seconds in '300', '300s', '5m', '1h' or an integer."""
    if isinstance(value, int):
        return float(value)
    total = 0.0
    parts = re.findall(r"\d+(?:ms|s|m|h)?", value.strip())
    if not parts or "".join(parts) != value.strip():
        raise ConfigError(f"invalid {what} {value!r}", hint="Write it as 90s, 5m or 1h30m.")
    for part in parts:
        m = _DURATION.match(part)
        assert m is not None
        total += int(m.group(1)) * _UNITS[m.group(2)]
    return total


@dataclass(frozen=True)
class ApplyPolicy:
    timeout: float = 300.0
    prune: bool = True
    protected_kinds: tuple[str, ...] = DEFAULT_PROTECTED_KINDS
    concurrency: int = 8
    force_conflicts: bool = False
    replace: str = "auto"  # auto | never: gitops.apply.replace
    # How long an apply stopped by a signal waits for its rollback to be healthy before it
    # exits (CI cancels with SIGTERM and kills a while later: GitLab and Kubernetes' 30 s).
    stop_timeout: float = 20.0


@dataclass(frozen=True)
class Cluster:
    name: str
    path: Path  # clusters/<name>
    kubeconfig: Path | None = None
    context: str | None = None
    records_namespace: str = "stackctl-system"
    wave: int = 0
    policy: ApplyPolicy = field(default_factory=ApplyPolicy)
    identity: str | None = None  # the kube-system namespace's uid (cluster.yaml `identity`)

    @property
    def config_file(self) -> Path:
        return self.path / CLUSTER_FILE

    @property
    def kustomization(self) -> Path:
        for name in KUSTOMIZATION_FILES:
            if (self.path / name).is_file():
                return self.path / name
        return self.path / KUSTOMIZATION_FILES[0]

    def kubeconfig_path(self) -> Path:
        """The kubeconfig to use: $STACKCTL_KUBECONFIG_<NAME> (CI: one secret per cluster;
        NAME upper-cased, other characters as '_'), else cluster.yaml's, else $KUBECONFIG's
        first, else the default."""
        per_cluster = os.environ.get(kubeconfig_env_var(self.name))
        if per_cluster:
            return Path(per_cluster).expanduser()
        if self.kubeconfig is not None:
            return self.kubeconfig
        env = os.environ.get("KUBECONFIG")
        if env:
            return Path(env.split(os.pathsep)[0]).expanduser()
        return Path("~/.kube/config").expanduser()


def kubeconfig_env_var(cluster: str) -> str:
    """STACKCTL_KUBECONFIG_EKS_PROD for cluster eks-prod."""
    return "STACKCTL_KUBECONFIG_" + re.sub(r"[^A-Z0-9]", "_", cluster.upper())


def _has_kustomization(d: Path) -> bool:
    return any((d / n).is_file() for n in KUSTOMIZATION_FILES)


def list_clusters(stack: Stack) -> list[str]:
    base = stack.root / CLUSTERS_DIR
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if d.is_dir() and _has_kustomization(d))


def load_cluster(stack: Stack, name: str) -> Cluster:
    validate_name(name, what="cluster name")
    path = stack.root / CLUSTERS_DIR / name
    if not _has_kustomization(path):
        known = ", ".join(list_clusters(stack)) or "none"
        raise ConfigError(
            f"no cluster named {name!r}: {path}/kustomization.yaml does not exist",
            hint=f"Clusters in this repo: {known}.",
        )
    cfg_path = path / CLUSTER_FILE
    if not cfg_path.is_file():
        return Cluster(name=name, path=path)
    physically_inside(stack.root, cfg_path, what=f"{CLUSTERS_DIR}/{name}/{CLUSTER_FILE}",
                      file=cfg_path)
    data = load_config(cfg_path, CLUSTER_SPEC)
    apply = data.get("apply") or {}
    policy = ApplyPolicy(
        timeout=parse_duration(apply.get("timeout", 300), what=f"apply.timeout in {cfg_path}"),
        prune=apply.get("prune", True),
        protected_kinds=tuple(apply.get("protectedKinds", DEFAULT_PROTECTED_KINDS)),
        concurrency=max(1, int(apply.get("concurrency", 8))),
        force_conflicts=apply.get("forceConflicts", False),
        replace=apply.get("replace", "auto"),
        stop_timeout=parse_duration(apply.get("stopTimeout", 20),
                                    what=f"apply.stopTimeout in {cfg_path}"),
    )
    kubeconfig = data.get("kubeconfig")
    kc: Path | None = None
    if kubeconfig:
        kc = Path(os.path.expandvars(kubeconfig)).expanduser()
        if not kc.is_absolute():
            # A relative kubeconfig is a file of the repository; an absolute or ~ one is
            # the person's choice (docs: ~/.kube/config).
            kc = inside(stack.root, kc.as_posix(), what="'kubeconfig'", file=cfg_path,
                        line=_kubeconfig_line(cfg_path),
                        hint="A kubeconfig outside the repository is written as an absolute "
                        "path or from your home folder (~/.kube/config), or given in "
                        f"${kubeconfig_env_var(name)}.").resolve()
    return Cluster(
        name=name, path=path, kubeconfig=kc, context=data.get("context"),
        records_namespace=data.get("recordsNamespace", "stackctl-system"),
        wave=data.get("wave", 0), policy=policy, identity=data.get("identity") or None,
    )


_IDENTITY_LINE = re.compile(r"^identity:.*$", re.MULTILINE)


def pin_identity(cluster: Cluster, uid: str) -> Path:
    """Write `identity: <uid>` into the cluster's cluster.yaml (created if missing),
    replacing an earlier identity line; every other line stays as it was."""
    path = cluster.config_file
    line = f"identity: {uid}"
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if _IDENTITY_LINE.search(text):
            text = _IDENTITY_LINE.sub(line, text, count=1)
        else:
            text += ("" if not text or text.endswith("\n") else "\n") + line + "\n"
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        from gitops.oserrors import refusal

        raise refusal(e, action=f"write {path}") or ConfigError(
            f"cannot write {path}: {e.strerror or e}.") from e
    return path


def _kubeconfig_line(cfg_path: Path) -> int | None:
    for n, text in enumerate(cfg_path.read_text(encoding="utf-8").splitlines(), 1):
        if text.startswith("kubeconfig:"):
            return n
    return None


def select_clusters(
    stack: Stack, names: tuple[str, ...] | list[str], *, all_: bool
) -> list[Cluster]:
    """The clusters a command acts on: the named ones, or every one with --all."""
    if all_ or not names:
        chosen = list_clusters(stack)
        if not chosen:
            raise ConfigError(
                f"no clusters in {stack.root / CLUSTERS_DIR}",
                hint="Add clusters/<name>/kustomization.yaml for each cluster.",
            )
    else:
        chosen = list(dict.fromkeys(names))
    return sorted((load_cluster(stack, n) for n in chosen), key=lambda c: (c.wave, c.name))
