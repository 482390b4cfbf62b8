"""Remote references in kustomizations, told apart the way kustomize tells them.

kustomize (api/internal/git/repospec.go, api/internal/loader/fileloader.go) fetches an
entry over the network when it is

- a git repository spec: `github.com/org/repo/path?ref=R`, `https://host/org/repo//path?ref=R`,
  `https://host/org/repo.git/path`, `git@host:org/repo/path`, `ssh://git@host/org/repo//path`,
  `git::https://...`, `file:///srv/repo//path`; the ref is `?ref=` (or the older `?version=`),
  none means the repository's default branch;
- an http(s) URL of a file, e.g. `https://github.com/kubernetes-sigs/jobset/releases/download/
  v0.10.1/manifests.yaml`.

kustomize tries an http(s) URL as a file first and falls back to git when the download is
not a file and the URL parses as a repository. Deciding without the network, stackctl takes
an http(s) URL as git when it carries a git marker (`?ref=`, `?version=`, `//` after the
repository, `.git`) or names a path inside a GitHub repository (not a release download or a
raw file), and as a file otherwise. Files referenced by patches and generators can only be
http(s) URLs (kustomize's loader fetches nothing else).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_HOST = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?$")
_SCP = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>[^/].*)$")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
GITHUB = "github.com"
# GitHub paths that are files, not folders of a repository.
_GITHUB_FILES = ("releases/download", "raw")


@dataclass(frozen=True)
class GitRemote:
    """A git repository at a ref, and a path inside it."""

    written: str  # the entry as the kustomization writes it
    repo: str  # the repository's URL, as kustomize clones it, without a trailing .git
    host: str  # github.com (for the folder it is vendored in)
    repo_path: str  # argoproj/argo-workflows
    path: str  # inside the repository; "" for its root
    ref: str | None  # None: the default branch

    kind = "git"

    @property
    def key(self) -> tuple[str, str, str | None]:
        return ("git", self.repo, self.ref)

    @property
    def folder(self) -> str:
        """Where it is vendored, below the release's `_remotes/`: one folder per repository
        and ref."""
        return "/".join(["git", safe_segment(self.host), *map(safe_segment,
                                                               self.repo_path.split("/")),
                         safe_segment(self.ref or "HEAD")])


@dataclass(frozen=True)
class FileRemote:
    """One file at an http(s) URL."""

    written: str
    url: str  # fetched as written (the query included)

    kind = "file"

    @property
    def key(self) -> tuple[str, str, str | None]:
        return ("file", self.url, None)

    @property
    def name(self) -> str:
        """The file's name (the last segment of the URL's path)."""
        parts = [p for p in urlsplit(self.url).path.split("/") if p]
        return safe_segment(unquote(parts[-1])) if parts else "file"

    @property
    def folder(self) -> str:
        """Where it is vendored, below `_remotes/`: the URL's scheme, host and path (its
        query folded into the last segment), e.g. https/github.com/kubernetes-sigs/jobset/
        releases/download/v0.10.1/manifests.yaml."""
        u = urlsplit(self.url)
        parts = [safe_segment(unquote(p)) for p in u.path.split("/") if p]
        if u.query:
            parts[-1:] = [safe_segment(f"{parts[-1] if parts else ''}?{u.query}")]
        host = (u.hostname or "") + (f":{u.port}" if u.port else "")  # never credentials
        return "/".join([u.scheme, safe_segment(host), *parts])


Remote = GitRemote | FileRemote


def safe_segment(text: str) -> str:
    """A path segment that is safe in a folder name: other characters become `_`, and the
    names `.` and `..` are never produced."""
    s = _SAFE.sub("_", text) or "_"
    return "_" + s if s in (".", "..") else s


def _query(entry: str) -> tuple[str, str | None, bool]:
    """(the entry without its query, the ref, whether the query holds git parameters)."""
    base, sep, query = entry.partition("?")
    if not sep:
        return entry, None, False
    params = parse_qs(query, keep_blank_values=True)
    refs = params.get("ref") or params.get("version") or [""]
    gitty = any(k in params for k in ("ref", "version", "timeout", "submodules"))
    return base, refs[0] or None, gitty


def _split_repo(path: str, *, github: bool) -> tuple[str, str] | None:
    """(repository path, path inside it) of `org/repo//sub`, `org/repo.git/sub`, and on
    GitHub `org/repo/sub`; None when the repository cannot be told."""
    path = path.strip("/")
    if "//" in path:
        repo, _, sub = path.partition("//")
        return repo.removesuffix(".git"), sub.strip("/")
    parts = path.split("/")
    for i, p in enumerate(parts):
        if p.endswith(".git") and i > 0:
            return "/".join(parts[:i + 1]).removesuffix(".git"), "/".join(parts[i + 1:])
    if github and len(parts) >= 2:
        return "/".join(parts[:2]), "/".join(parts[2:])
    if len(parts) >= 2:
        return "/".join(parts[:2]), "/".join(parts[2:])
    return None


def _git(written: str, repo: str, host: str, repo_path: str, sub: str,
         ref: str | None) -> GitRemote:
    sub = posixpath.normpath(sub) if sub else ""
    return GitRemote(written=written, repo=repo, host=host, repo_path=repo_path,
                     path="" if sub == "." else sub, ref=ref)


def parse_remote(entry: str, *, local_exists: bool = False) -> Remote | None:
    """The remote an entry of resources/components/bases names, or None for a local path.
    `local_exists`: a folder of that name exists beside the kustomization (a host-named
    local folder, `github.com/...`, stays local as kustomize keeps it)."""
    written = entry
    e = entry.strip()
    forced_git = e.startswith("git::")
    e = e.removeprefix("git::")
    base, ref, gitty = _query(e)
    scp = _SCP.match(base) if "://" not in base else None
    if scp:
        split = _split_repo(scp.group("path"), github=scp.group("host") == GITHUB)
        if split is None:
            return None
        repo_path, sub = split
        repo = f"{scp.group('user')}@{scp.group('host')}:{repo_path}"
        return _git(written, repo, scp.group("host"), repo_path, sub, ref)
    if "://" in base:
        u = urlsplit(base)
        scheme = u.scheme.lower()
        host = u.hostname or ""
        if scheme == "file":
            split = _split_repo(u.path, github=False)
            if split is None:
                return None
            repo_path, sub = split
            return _git(written, f"file:///{repo_path}", "file", repo_path, sub, ref)
        path = u.path
        is_github = host == GITHUB
        if scheme in ("http", "https") and not forced_git and not gitty \
                and "//" not in path.strip("/") and ".git/" not in path + "/" \
                and not (is_github and _github_repo_path(path)):
            return FileRemote(written=written, url=e)
        split = _split_repo(path, github=is_github)
        if split is None:
            return None
        repo_path, sub = split
        netloc = u.netloc
        return _git(written, f"{scheme}://{netloc}/{repo_path}", host, repo_path, sub, ref)
    # No scheme: github.com/org/repo/path, or any host-named path that is not local.
    first = base.split("/", 1)[0]
    if "/" not in base or not _HOST.match(first) or (local_exists and not gitty):
        return None
    split = _split_repo(base[len(first):], github=first == GITHUB)
    if split is None:
        return None
    repo_path, sub = split
    return _git(written, f"https://{first}/{repo_path}", first.split(":")[0], repo_path, sub,
                ref)


def _github_repo_path(path: str) -> bool:
    """Whether a github.com URL path names something inside a repository's tree (a git
    base), not a release download or a raw file."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return False
    rest = "/".join(parts[2:])
    return not any(rest == f or rest.startswith(f + "/") for f in _GITHUB_FILES)


def parse_file_url(entry: str) -> FileRemote | None:
    """A file an entry of patches or generators names over http(s), or None."""
    e = entry.strip()
    if re.match(r"^https?://", e, re.IGNORECASE):
        return FileRemote(written=entry, url=e)
    return None
