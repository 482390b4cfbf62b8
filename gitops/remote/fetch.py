"""Fetching remote bases through the mirrors, each once per run.

Git repositories are read with pygit2 (gitops.git), never a git subprocess: a mirror that is
a local folder (`file:///srv/mirrors/github.com/argoproj/argo-workflows`, with or without
`.git`, bare or not) is read in place; a network URL is fetched into a bare cache at
`$STACKCTL_CACHE/remotes/<hash>.git` (safe to delete). Files are read from `file://` paths
or downloaded over http(s) (proxies from the environment, as curl and git use them).
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gitops import git, untrusted
from gitops.errors import GitError, RemoteError
from gitops.paths import cache_dir
from gitops.remote.mirrors import Mirrored, Mirrors
from gitops.source import nearest_tags, sort_tags

_HEX = re.compile(r"^[0-9a-f]{7,40}$")
TIMEOUT = 60.0  # seconds without a byte before a download is given up
USER_AGENT = "stackctl (remote bases)"
_HINT = ("Make the remote reachable, or map its URL to a reachable copy with 'mirrors:' in "
         "stack.yaml or STACKCTL_MIRRORS (docs/vendor.md, 'Air-gapped sites').")


@dataclass(frozen=True)
class GitCheckout:
    """A repository at the commit a ref resolved to, listed (contents read on demand)."""

    repo_url: str
    ref: str | None
    commit: str
    source: Mirrored
    repo: git.Repo = field(repr=False, compare=False)
    listing: git.Files = field(repr=False, compare=False)  # {path: (mode, blob id)}

    def read(self, path: str) -> bytes:
        blob = self.listing[path][1].decode("ascii")
        # Untrusted content: a huge blob is refused from its header, before it is read.
        untrusted.check_blob_size(self.repo.blob_size(blob), path,
                                  f"{self.repo_url} at {self.ref or 'HEAD'}")
        return self.repo.read_blob(blob)

    def mode(self, path: str) -> int:
        return self.listing[path][0]


@dataclass(frozen=True)
class FetchedFile:
    url: str
    data: bytes
    sha256: str
    source: Mirrored


def local_path(url: str) -> Path | None:
    """The folder a `file://` URL or an absolute path names; None for network URLs."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if url.startswith("/"):
        return Path(url)
    return None


def _segments(url: str) -> list[str]:
    """The path segments of a URL or scp-form address, unquoted (its query left out)."""
    base = url.partition("?")[0]
    path = urlsplit(base).path if "://" in base else base.partition(":")[2] or base
    return unquote(path).replace("\\", "/").split("/")


def check_upstream_url(url: str, mirrors: Mirrors, wanted_by: str) -> Mirrored:
    """Where `url`, written by an upstream release, is fetched from; refused when it names a
    path on this machine without a mirror the user configured, or walks up with `..`.

    A release is someone else's data (gitops.untrusted): a `file:///etc` base in it would
    copy this machine's files into vendor/, and `..` in a URL would climb out of a local
    mirror's folder, since a mirror glues the URL's rest onto its own prefix."""
    if ".." in _segments(url):
        raise RemoteError(
            f"{wanted_by} pulls {url}, whose path climbs up with '..': stackctl refuses it, "
            "because through a mirror it would read outside the mirror's folder.",
            hint="Fix the URL in the kustomization (no remote base needs '..'), or import a "
            "release you trust.")
    mirrored = mirrors.apply(url)
    if mirrored.prefix is None and local_path(url) is not None:
        raise RemoteError(
            f"{wanted_by} pulls {url}, a path on this machine rather than a network "
            "location: importing it would copy whatever that path holds here into vendor/, "
            "so the release would vendor differently on every machine.",
            hint="If you trust that copy, map the URL to it explicitly with 'mirrors:' in "
            "stack.yaml (or STACKCTL_MIRRORS), e.g. 'file:///srv/repo: file:///srv/repo'; "
            "otherwise fix the release's kustomization.")
    return mirrored


def _alternatives(url: str) -> list[str]:
    """A mirror's repository with and without `.git`, as git servers and folders hold it."""
    bare = url.rstrip("/").removesuffix(".git")
    return [bare, bare + ".git"] if url.rstrip("/") == bare else [bare + ".git", bare]


class Fetcher:
    """Fetches each repository and file once; later asks are served from memory."""

    def __init__(self, mirrors: Mirrors | None = None, *, cache: Path | None = None,
                 timeout: float = TIMEOUT) -> None:
        self.mirrors = mirrors or Mirrors()
        self.cache = cache or cache_dir() / "remotes"
        self.timeout = timeout
        self._repos: dict[str, tuple[git.Repo, Mirrored]] = {}
        self._checkouts: dict[tuple[str, str | None], GitCheckout] = {}
        self._files: dict[str, FetchedFile] = {}

    # -- git -------------------------------------------------------------------------------
    def _open_repo(self, repo_url: str, wanted_by: str) -> tuple[git.Repo, Mirrored]:
        if repo_url in self._repos:
            return self._repos[repo_url]
        mirrored = check_upstream_url(repo_url, self.mirrors, wanted_by)
        tried: list[str] = []
        for candidate in _alternatives(mirrored.fetch):
            folder = local_path(candidate)
            if folder is not None:
                if folder.is_dir() and git.is_repo_dir(folder):
                    try:
                        repo = git.open_repo(folder, search=False)
                    except GitError as e:
                        tried.append(f"{candidate} ({e.message})")
                        continue
                    break
                tried.append(f"{candidate} (no git repository there)")
                continue
            key = hashlib.sha256(candidate.encode()).hexdigest()[:16]
            try:
                repo = untrusted.fetch_mirror(
                    candidate, self.cache / f"{key}.git",
                    f"{candidate}, the repository of a remote base {wanted_by} pulls,")
            except GitError as e:
                tried.append(f"{candidate} ({e.message})")
                continue
            break
        else:
            via = (f"through {mirrored.describe()}" if mirrored.prefix
                   else "directly (no mirror in stack.yaml's mirrors: or STACKCTL_MIRRORS "
                   "matches it)")
            raise RemoteError(
                f"cannot fetch the git repository {repo_url}, which {wanted_by} pulls: it "
                f"was tried {via}, at {'; '.join(tried)}.",
                hint=_HINT)
        used = Mirrored(url=repo_url, fetch=candidate, prefix=mirrored.prefix,
                        replacement=mirrored.replacement)
        self._repos[repo_url] = (repo, used)
        return repo, used

    def git(self, repo_url: str, ref: str | None, *, wanted_by: str) -> GitCheckout:
        """The repository at `ref` (its default branch when None)."""
        key = (repo_url, ref)
        if key in self._checkouts:
            return self._checkouts[key]
        repo, source = self._open_repo(repo_url, wanted_by)
        commit = _resolve(repo, ref)
        if commit is None:
            tags = sort_tags(repo.tags())
            near = nearest_tags(ref or "", tags)
            listed = f"Nearest tags there: {', '.join(near)}." if near else "It has no tags."
            raise RemoteError(
                f"the ref {ref or 'HEAD'} of {repo_url}, which {wanted_by} pulls, is no "
                f"tag, branch or commit in {source.describe()}. {listed}",
                hint="If the mirror is behind upstream, update it (fetch the tag into it); "
                "otherwise the release asks for a ref that does not exist.")
        try:
            listing = repo.read_tree(commit, with_content=False)
        except GitError as e:
            raise RemoteError(f"cannot read {repo_url} at {ref or 'HEAD'} ({commit[:12]}) "
                              f"from {source.describe()}: {e.message}", hint=_HINT) from e
        out = GitCheckout(repo_url=repo_url, ref=ref, commit=commit, source=source, repo=repo,
                          listing=listing)
        self._checkouts[key] = out
        return out

    # -- files -----------------------------------------------------------------------------
    def file(self, url: str, *, wanted_by: str) -> FetchedFile:
        if url in self._files:
            return self._files[url]
        mirrored = check_upstream_url(url, self.mirrors, wanted_by)
        where = mirrored.describe()
        folder = local_path(mirrored.fetch)
        if folder is not None:
            try:
                with folder.open("rb") as f:
                    data = untrusted.read_stream(
                        f, url, untrusted.Budget(untrusted.Limits.from_env(), where))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
                raise RemoteError(
                    f"the file {url}, which {wanted_by} pulls, is not at {where}.",
                    hint="Put the file into the mirror at the URL's path, or fix the "
                    "mirror's prefix in stack.yaml's mirrors: (or STACKCTL_MIRRORS).") from e
            except OSError as e:
                raise RemoteError(f"cannot read the file {url}, which {wanted_by} pulls, "
                                  f"at {where}: {e.strerror}.", hint=_HINT) from e
        elif mirrored.fetch.startswith(("http://", "https://")):
            data = self._download(url, mirrored, wanted_by)
        else:
            raise RemoteError(
                f"cannot fetch the file {url}, which {wanted_by} pulls, from {where}: only "
                "http(s):// and file:// locations hold files.", hint=_HINT)
        out = FetchedFile(url=url, data=data, sha256=hashlib.sha256(data).hexdigest(),
                          source=mirrored)
        self._files[url] = out
        return out

    def _download(self, url: str, mirrored: Mirrored, wanted_by: str) -> bytes:
        where = mirrored.describe()
        request = urllib.request.Request(mirrored.fetch, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                # Streamed within the import's limits (gitops.untrusted), as archives are.
                return untrusted.read_stream(
                    response, url, untrusted.Budget(untrusted.Limits.from_env(), where))
        except urllib.error.HTTPError as e:
            raise RemoteError(
                f"the file {url}, which {wanted_by} pulls, was refused at {where}: HTTP "
                f"{e.code} {e.reason}.",
                hint="Check that the mirror holds the file at the URL's path (404) and that "
                "the credentials or proxy settings allow it (401, 403, 407).") from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise RemoteError(
                f"cannot reach {where} for the file {url}, which {wanted_by} pulls: "
                f"{reason}.", hint=_HINT) from e


def _resolve(repo: git.Repo, ref: str | None) -> str | None:
    """The commit of a ref as kustomize's `git fetch <ref>` takes it: a tag, a branch, or a
    commit id (7 to 40 hex digits); None: the default branch."""
    if ref is None:
        for candidate in ("HEAD", "main", "master"):
            try:
                return repo.resolve(candidate)
            except GitError:
                continue
        return None
    tags = repo.tags()
    if ref in tags:
        return tags[ref]
    branches = repo.branches()
    if ref in branches:
        return branches[ref]
    if _HEX.match(ref):
        try:
            return repo.resolve(ref)
        except GitError:
            return None
    return None
