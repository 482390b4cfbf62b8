"""Finding, opening and creating repositories."""

from __future__ import annotations

from pathlib import Path

import pygit2

from gitops.errors import FetchTooLargeError, GitError
from gitops.git.base import translated
from gitops.git.repo import Repo


def _is_repo_dir(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def is_repo_dir(path: Path) -> bool:
    """Whether `path` itself is a git repository (a work tree root or a bare repo)."""
    return _is_repo_dir(path)


def find_repo(start: Path) -> Path | None:
    """The work tree root of the repository holding `start`, or None."""
    found = pygit2.discover_repository(str(start))
    if not found:
        return None
    repo = pygit2.Repository(found)
    return Path(repo.workdir) if repo.workdir else Path(repo.path)


def open_repo(path: Path, *, search: bool = True) -> Repo:
    """Open the repository at `path` (or, with search, the one holding it)."""
    location: str | None = str(path)
    if search:
        location = pygit2.discover_repository(str(path))
    if not location:
        raise GitError(
            f"{path} is not inside a git repository.",
            hint="Run 'stackctl init' there, or run the command inside your deployment repo.",
        )
    try:
        return Repo(pygit2.Repository(location))
    except pygit2.GitError as e:
        raise GitError(f"cannot open the git repository at {path}: {e}") from e


def init_repo(path: Path, *, bare: bool = False, initial_branch: str = "main") -> Repo:
    with translated(f"cannot create a git repository in {path}"):
        return Repo(pygit2.init_repository(str(path), bare=bare, initial_head=initial_branch))


def open_with_prefix(root: Path) -> tuple[Repo, str]:
    """The repository holding the folder `root`, and root's path inside it ("" at the top):
    a deployment repo may live in a subfolder of a larger repository."""
    repo = open_repo(root)
    try:
        rel = root.resolve().relative_to(repo.root)
    except ValueError as e:
        raise GitError(f"{root} is not inside the repository {repo.root}") from e
    prefix = rel.as_posix()
    return repo, "" if prefix == "." else prefix


def join_prefix(prefix: str, path: str) -> str:
    """A stack-relative path as a repository path, under `prefix` from open_with_prefix."""
    return f"{prefix}/{path}" if prefix else path


class _Capped(pygit2.RemoteCallbacks):
    """Stops a fetch once it has received more than `limit` bytes: what a remote serves is
    untrusted, and an endless or huge pack would otherwise fill the disk."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__()
        self.url = url
        self.limit = limit

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        if stats.received_bytes > self.limit:
            raise FetchTooLargeError(self.url, stats.received_bytes, self.limit)


def clone_or_fetch_mirror(url: str, mirror: Path, *, max_bytes: int | None = None) -> Repo:
    """A bare mirror of `url` at `mirror` (created on first use) with every branch and tag
    fetched now. Raises GitError when the remote cannot be reached, FetchTooLargeError when
    it sends more than `max_bytes`."""
    mirror.parent.mkdir(parents=True, exist_ok=True)
    try:
        repo = (pygit2.Repository(str(mirror)) if mirror.exists()
                else pygit2.init_repository(str(mirror), bare=True))
        remote = repo.remotes.create_anonymous(url)
        remote.fetch(["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                     prune=pygit2.enums.FetchPrune.PRUNE,
                     callbacks=_Capped(url, max_bytes) if max_bytes is not None else None)
    except pygit2.GitError as e:
        raise GitError(f"cannot fetch {url}: {e}") from e
    return Repo(repo)


def shown_dirty_paths(root: Path, limit: int = 8) -> str:
    """The uncommitted paths of the repository holding `root`, for a message: the first
    `limit`, then how many more; "" when there are none or no repository can be read."""
    try:
        paths = open_repo(root).dirty_paths()
    except GitError:
        return ""
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more
