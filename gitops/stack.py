"""The deployment repo model: stack.yaml and the layout around it.

    stack.yaml        name, source and ref of the upstream stack
    stackctl.lock     what is vendored (written by `stackctl vendor import`)
    vendor/<name>/    the pristine upstream, possibly edited locally
    overlays/         local kustomize overlays and components
    clusters/<name>/  one kustomization per cluster, with an optional cluster.yaml
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gitops.errors import ConfigError
from gitops.schema import Field

STACK_FILE = "stack.yaml"
LOCK_FILE = "stackctl.lock"
VENDOR_DIR = "vendor"
OVERLAYS_DIR = "overlays"
CLUSTERS_DIR = "clusters"
STATE_DIR = ".stackctl"

_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")

STACK_SPEC = {
    "name": Field((str,), required=True,
                  doc="The upstream's short name, e.g. `name: kubeflow`; it names vendor/<name>/."),
    "source": Field((str,), required=True,
                    doc="A git URL, a local git repository, or a local .tar.gz/.zip archive."),
    "ref": Field((str,), doc="The release to track, e.g. `ref: v1.9` (highest v1.9.x)."),
    "kustomize": Field((str,), doc="The kustomize release every render uses, e.g. "
                       "`kustomize: v5.8.2`; change it with 'stackctl upgrade --kustomize "
                       "VERSION' (a planned change: every cluster rendered with both)."),
    "description": Field((str,)),
    "redact": Field((dict,), fields={
        "sensitiveKeys": Field((list,), items=(str,),
                               doc="Regular expressions of sensitive ConfigMap keys and env "
                                   "names, e.g. `sensitiveKeys: [dsn, 'conn(ection)?string']`."),
        "replaceDefaults": Field((bool,)),
    }, doc="Secret redaction settings; see docs/secrets.md."),
    "rollout": Field((dict,), fields={
        "maxParallel": Field((int,), doc="Clusters applied at once within a wave, e.g. "
                                         "`maxParallel: 5`."),
        "maxFailures": Field((int,), doc="Failed clusters a rollout tolerates before it "
                                         "stops, e.g. `maxFailures: 0`."),
        "bakeTime": Field((str, int), doc="How long a wave must stay healthy before the "
                                          "next starts, e.g. `bakeTime: 5m`."),
    }, doc="How `stackctl rollout` goes through the clusters; see docs/rollout.md."),
    "mirrors": Field((dict,), doc="URL prefix -> replacement prefix for every fetch of a "
                     "remote base, e.g. `https://github.com/: file:///srv/mirrors/github.com/`; "
                     "see docs/vendor.md."),
    "secrets": Field((dict,), fields={
        "require": Field((str,), choices=("sops",),
                         doc="`require: sops`: Secret manifests and secretGenerator sources "
                             "must be SOPS-encrypted (render warns, plan fails)."),
        "exclude": Field((list,), items=(str,),
                         doc="Globs from the repo root whose clear-text Secrets are accepted, "
                             "e.g. `exclude: ['vendor/*']`."),
    }, doc="What stackctl requires of Secrets in git; see docs/secrets.md."),
}


@dataclass(frozen=True)
class Stack:
    """A deployment repo: its root folder and what stack.yaml says about the upstream."""

    root: Path
    name: str
    source: str
    ref: str | None = None
    kustomize: str | None = None  # the pinned kustomize release, e.g. v5.8.2
    mirrors: tuple[tuple[str, str], ...] = ()  # stack.yaml's `mirrors:`, in file order

    @property
    def vendor_dir(self) -> Path:
        return self.root / VENDOR_DIR / self.name

    @property
    def vendor_relpath(self) -> str:
        return f"{VENDOR_DIR}/{self.name}"

    @property
    def vendor_branch(self) -> str:
        return f"vendor/{self.name}"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def resolve_source(self, source: str | None = None) -> str:
        """A source as written in stack.yaml or on the command line: relative paths are
        taken from the repo root, URLs as they are."""
        src = source or self.source
        if "://" in src or src.startswith("git@"):
            return src
        p = Path(src).expanduser()
        return str(p if p.is_absolute() else (self.root / p).resolve())


def validate_name(name: str, *, what: str = "name") -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid {what} {name!r}",
            hint="Use lower-case letters, digits, '-', '.' and '_' (at most 63 characters).",
        )
    return name


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` holding stack.yaml."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / STACK_FILE).is_file():
            return d
    raise ConfigError(
        f"no {STACK_FILE} found in {here} or any folder above it",
        hint="Run the command inside a deployment repo, or create one with "
        "'stackctl init DIR --name NAME --source SRC'.",
    )


def locate_stack(start: Path | None = None) -> Stack:
    """The deployment repo at or above `start`, for a command that reads only its folders
    (render reads clusters/ and what they reference): stack.yaml is found, not parsed,
    which keeps a cached render from loading the YAML libraries. Name and source are
    empty; use load_stack() wherever they matter. The kustomize pin is read (a line of the
    file), since it decides which binary renders."""
    root = find_root(start)
    return Stack(root=root, name="", source="", kustomize=_pinned(root / STACK_FILE))


_PIN = re.compile(r"""^kustomize:[ \t]*["']?([^\s"'#]+)""", re.MULTILINE)


def _pinned(path: Path) -> str | None:
    """stack.yaml's `kustomize:` without a YAML parser (load_stack validates the file)."""
    try:
        m = _PIN.search(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return m.group(1) if m else None


def load_stack(root: Path | None = None) -> Stack:
    from gitops.remote.mirrors import check_configured  # YAML: where stack.yaml is read
    from gitops.schema import load_config

    root = find_root(root)
    path = root / STACK_FILE
    data = load_config(path, STACK_SPEC)
    validate_name(data["name"], what=f"stack name in {path}")
    mirrors = check_configured(data["mirrors"], path=path) if data.get("mirrors") else {}
    return Stack(root=root, name=data["name"], source=data["source"], ref=data.get("ref"),
                 kustomize=data.get("kustomize"), mirrors=tuple(mirrors.items()))
