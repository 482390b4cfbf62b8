"""Paths read from the deployment repo's own files stay inside the repository.

stackctl.lock's `path` and a relative `kubeconfig` of cluster.yaml name places in the repo;
a value that climbs out (`../../../../etc/ssl`), an absolute lock path, or a link on the
way whose real path is elsewhere would make stackctl read (and call pristine, or use as
credentials) files of the machine. stack.yaml's `source` is the one path meant to point
elsewhere: the upstream, read as untrusted content (gitops.untrusted).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from gitops.errors import ConfigError


def relative_inside(value: str) -> bool:
    """Whether `value` is a relative path that stays inside the folder it is read from,
    judged by its text alone (no `..` above the top, not absolute, not empty)."""
    p = PurePosixPath(value.replace("\\", "/"))
    if not value.strip() or p.is_absolute() or (os.name == "nt" and ":" in value):
        return False
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return False
    return True


def _inside(real: Path, root_real: Path) -> bool:
    return real == root_real or root_real in real.parents


def physically_inside(root: Path, path: Path, *, what: str, file: Path | str,
                      line: int | None = None) -> Path:
    """`path` (below `root`) when its real path, links followed, is inside the real `root`;
    a ConfigError naming `file` otherwise."""
    real = path.resolve()
    if not _inside(real, root.resolve()):
        raise ConfigError(
            f"{what} leads to {real}, outside the repository {root} (through a link); "
            "stackctl reads only files inside the repository there.",
            path=file, line=line,
            hint="Replace the link with the folder or file itself, inside the repository.")
    return path


def inside(root: Path, value: str, *, what: str, file: Path | str,
           line: int | None = None,
           hint: str = "Restore the file from git, or write the path again.") -> Path:
    """root/value, refusing a value that leaves the repository by its text or by a link."""
    if not relative_inside(value):
        raise ConfigError(
            f"{what} {value!r} is not a path inside the repository; it must be relative to "
            f"{root} and stay below it.",
            path=file, line=line, hint=hint)
    return physically_inside(root, root / value, what=f"{what} {value!r}", file=file, line=line)
