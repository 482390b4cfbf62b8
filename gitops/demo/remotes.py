"""A mirror of the remote bases Kubeflow v1.10+ pulls, built from ../shared's remote-bases
(never copied into the repo), the way an air-gapped site mirrors GitHub: git repositories
tagged with the ref at the repository's path, files at the URL's path. `make
demo-kubeflow` fetches through it (STACKCTL_MIRRORS); so do the tests marked `kubeflow`
(tests/fixtures/remote_mirror.py).

    <mirror>/github.com/argoproj/argo-workflows.git   bare, tag v3.7.3  (with .git)
    <mirror>/github.com/kubernetes-sigs/lws            not bare, tag v0.7.0 (without .git)
    <mirror>/github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml
    <mirror>/github.com/kubernetes-sigs/jobset/releases/download/v0.6.0/manifests.yaml
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitops import git
from gitops.paths import project_root
from gitops.source import read_archive

REMOTE_BASES = Path(
    os.environ.get("STACKCTL_REMOTE_BASES")
    or project_root().parent / "shared" / "upstream" / "remote-bases"
)
GITHUB = "https://github.com/"
# archive -> (repository folder in the mirror, tag)
GIT_REMOTES = {
    "argo-workflows-v3.7.3.tar.gz": ("argoproj/argo-workflows.git", "v3.7.3"),
    "lws-v0.7.0.tar.gz": ("kubernetes-sigs/lws", "v0.7.0"),
}
FILE_REMOTES = {
    "jobset-v0.10.1-manifests.yaml": "kubernetes-sigs/jobset/releases/download/v0.10.1/"
                                     "manifests.yaml",
    "jobset-v0.6.0-manifests.yaml": "kubernetes-sigs/jobset/releases/download/v0.6.0/"
                                    "manifests.yaml",
}
_SIGNATURE = pygit2.Signature("Mirror", "mirror@example.com", 1_700_000_000, 0)


@dataclass(frozen=True)
class Mirror:
    root: Path  # holds github.com/...
    commits: Mapping[str, str]  # "argoproj/argo-workflows@v3.7.3" -> commit id

    @property
    def github(self) -> Path:
        return self.root / "github.com"

    @property
    def replacement(self) -> str:
        return self.github.as_uri() + "/"

    @property
    def env(self) -> str:
        """STACKCTL_MIRRORS's value mapping https://github.com/ to the mirror."""
        return f"{GITHUB}={self.replacement}"



def remote_bases_present(folder: Path = REMOTE_BASES) -> bool:
    return all((folder / a).is_file() for a in (*GIT_REMOTES, *FILE_REMOTES))


def tag(repo_dir: Path, name: str, files: git.Files, *, message: str = "") -> str:
    """Commit `files` as the whole tree of a new commit on the repository's main branch
    and tag it `name` (moving the tag when it exists, as a force-push of a tag would)."""
    raw = pygit2.Repository(str(repo_dir))
    repo = git.Repo(raw)
    tree = repo.write_tree(files)
    parents = [] if raw.head_is_unborn else [raw.head.target]
    oid = raw.create_commit("refs/heads/main", _SIGNATURE, _SIGNATURE,
                            message or f"release {name}", pygit2.Oid(hex=tree), parents)
    raw.references.create(f"refs/tags/{name}", oid, force=True)
    return str(oid)


def build_mirror(dest: Path, remote_bases: Path = REMOTE_BASES) -> Mirror:
    """The mirror of the four remote sources under dest/github.com/."""
    commits: dict[str, str] = {}
    for archive, (where, ref) in GIT_REMOTES.items():
        repo_dir = dest / "github.com" / where
        pygit2.init_repository(str(repo_dir), bare=where.endswith(".git"),
                               initial_head="main")
        key = f"{where.removesuffix('.git')}@{ref}"
        commits[key] = tag(repo_dir, ref, read_archive(remote_bases / archive))
    for name, url_path in FILE_REMOTES.items():
        target = dest / "github.com" / url_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((remote_bases / name).read_bytes())
    return Mirror(root=dest, commits=commits)
