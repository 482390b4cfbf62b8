"""The render walk's fence: a render never reads through a link out of the repository.

kustomize follows symbolic links, and so does the walk that reads a render's inputs for its
cache key (gitops.kustomize.walk). A link committed in a kustomization's folder to
`/dev/zero` would be read until memory runs out; one to `/etc` or `~/.kube` would pull the
machine's files into a render. The fence lets the walk follow links only while their real
path stays inside the repository, and refuses FIFOs, sockets and device files.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitops.errors import RenderError


def enclosing_repository(path: Path) -> Path:
    """The git work tree holding `path` (the nearest folder above it with a `.git`), else
    `path` itself."""
    p = Path(os.path.normpath(Path(path).absolute()))
    for d in (p, *p.parents):
        if os.path.lexists(d / ".git"):
            return d
    return p


class Fence:
    """The files below a walked directory, as kustomize reads them (following links, a link
    loop walked once), refusing what a render must never read: a link whose real path is
    outside the boundary (`overlays/zero -> /dev/zero` would be read until memory runs
    out; `-> /etc` would leak files into a render), and a FIFO, socket or device file."""

    def __init__(self, boundary: Path) -> None:
        self.shown = str(boundary)
        self.real = os.path.realpath(boundary)

    def _inside(self, real: str) -> bool:
        return real == self.real or real.startswith(self.real.rstrip(os.sep) + os.sep)

    def _refuse(self, path: str, why: str) -> RenderError:
        rel = os.path.relpath(path, self.shown)
        if "outside the repository" in why:
            rule = f"a render never reads through a link out of the repository ({self.shown})"
        else:
            rule = "a render reads only regular files (kustomize could block on it forever)"
        return RenderError(
            f"{rel} {why}; {rule}.",
            hint="Replace it with the files themselves (or a link to a place inside the "
            "repository), then render again.")

    def check_file(self, path: str) -> None:
        """A path a kustomization names (a file, or a folder to walk): a path without links
        may go anywhere kustomize allows, a path through a link must stay inside."""
        real = os.path.realpath(path)
        if real != os.path.normpath(path) and not self._inside(real):
            raise self._refuse(path, f"leads through a link to {real}, outside the "
                               "repository")

    def files_below(self, top: str) -> list[str]:
        self.check_file(top)
        out: list[str] = []
        seen: set[str] = set()
        todo = [top]
        while todo:
            d = todo.pop()
            rp = os.path.realpath(d)
            if rp in seen:
                continue
            seen.add(rp)
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue  # as os.walk: an unreadable folder is kustomize's to report
            for e in entries:
                if e.is_symlink():
                    real = os.path.realpath(e.path)
                    if not self._inside(real):
                        raise self._refuse(e.path, f"is a link to {real}, outside the "
                                           "repository")
                    if e.is_dir():
                        if e.name != ".git":
                            todo.append(e.path)
                        continue
                    if not e.is_file() and _exists(e.path):
                        raise self._refuse(e.path, f"is a link to {real}, which is not a "
                                           "regular file")
                    out.append(e.path)  # a file, or a dangling link (read as absent)
                elif e.is_dir(follow_symlinks=False):
                    if e.name != ".git":
                        todo.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    out.append(e.path)
                else:
                    raise self._refuse(e.path, "is not a regular file (a FIFO, socket or "
                                       "device)")
        return out


def _exists(path: str) -> bool:
    try:
        Path(path).stat()
    except OSError:
        return False
    return True
