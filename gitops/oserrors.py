"""What the machine refused: a full disk, a read-only file system, a missing permission, a
git lock file left by another process.

These are conditions of the machine (or of another process), not bugs: they become a
MachineError (exit 2) naming the file and saying what to do. pygit2 raises libgit2's
failures as OSError (or GitError) with a message and no errno, so the text is read too.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from gitops.errors import MachineError

_LOCK = re.compile(r"failed to (?:lock|create locked) file '([^']+\.lock)'")
_INDEX_LOCKED = "the index is locked"
_TEXTS = (
    ((errno.ENOSPC, errno.EDQUOT), ("No space left on device", "Disk quota exceeded"),
     "Free some space on that disk"),
    ((errno.EROFS,), ("Read-only file system",),
     "Run stackctl in a writable clone of the repository (or remount the file system "
     "read-write)"),
    ((errno.EACCES, errno.EPERM), ("Permission denied", "Operation not permitted"),
     "Check the owner and permissions of that folder (stackctl runs as the user who "
     "starts it)"),
)


def refusal(e: BaseException, *, action: str, git_dir: str | Path | None = None
            ) -> MachineError | None:
    """A MachineError for `e` when the machine or another process caused it, else None.
    `action` says what was attempted ("write .stackctl/upgrade/state.json"); `git_dir` is
    the repository's .git folder, for libgit2's messages that name no file."""
    text = str(e)
    m = _LOCK.search(text)
    path = m.group(1) if m else ""
    if not path and _INDEX_LOCKED in text and git_dir is not None:
        path = str(Path(git_dir) / "index.lock")
    if path:
        return MachineError(
            f"cannot {action}: git's lock file {path} exists; a git command is working in "
            "this repository, or one was stopped and left the file behind.",
            remedy=f"If no git command is running in this repository, delete it (rm {path})")
    code = e.errno if isinstance(e, OSError) else None
    for codes, texts, remedy in _TEXTS:
        found = next((t for t in texts if t in text), None)
        if code not in codes and found is None:
            continue
        detail = os.strerror(code) if code is not None and code in codes else str(found)
        where = (str(e.filename) if isinstance(e, OSError) and e.filename
                 else f"the repository {Path(git_dir)}" if git_dir else "")
        if where and where not in action:
            detail += f" ({where})"
        return MachineError(f"cannot {action}: {detail}.", remedy=remedy)
    return None
