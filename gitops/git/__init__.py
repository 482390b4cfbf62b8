"""The one wrapper around pygit2: repositories, trees, commits, branches, checkout, and
the export of a commit's tree for `render --ref`.

Other modules never import pygit2; they call `Repo` with plain values (commit ids as hex
strings, file trees as {path: (mode, bytes)}) and catch `GitError`.

    files      file trees as plain data, digests, writing them to disk
    base       commits as values, commit signatures, pygit2's errors translated
    repo       `Repo`
    repos      finding, opening, creating and mirroring repositories
    snapshot   a commit's tree in a temporary directory; the source of a working-tree render
    store      the object store after an operation: what it wrote packed or dropped
"""

from __future__ import annotations

from gitops.errors import DirtyWorktreeError, GitError
from gitops.git.base import CommitInfo, signature
from gitops.git.files import (
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    MODE_TREE,
    Files,
    blob_id,
    digest,
    mode_flag,
    mode_of_path,
    read_worktree_files,
    write_files,
)
from gitops.git.repo import Repo
from gitops.git.repos import (
    clone_or_fetch_mirror,
    find_repo,
    init_repo,
    is_repo_dir,
    join_prefix,
    open_repo,
    open_with_prefix,
    shown_dirty_paths,
)
from gitops.git.snapshot import (
    Snapshot,
    blobs_match,
    exported,
    head_commit_of,
    resolve_commit,
    worktree_source,
)

__all__ = [
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_LINK",
    "MODE_TREE",
    "CommitInfo",
    "DirtyWorktreeError",
    "Files",
    "GitError",
    "Repo",
    "Snapshot",
    "blob_id",
    "blobs_match",
    "clone_or_fetch_mirror",
    "digest",
    "exported",
    "find_repo",
    "head_commit_of",
    "init_repo",
    "is_repo_dir",
    "join_prefix",
    "mode_flag",
    "mode_of_path",
    "open_repo",
    "open_with_prefix",
    "read_worktree_files",
    "resolve_commit",
    "shown_dirty_paths",
    "signature",
    "worktree_source",
    "write_files",
]
