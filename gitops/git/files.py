"""File trees as plain data ({path: (mode, bytes)}), their digests, and their place on disk."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import pygit2
from pygit2.enums import FileMode

MODE_FILE = int(FileMode.BLOB)  # 0o100644
MODE_EXEC = int(FileMode.BLOB_EXECUTABLE)  # 0o100755
MODE_LINK = int(FileMode.LINK)  # 0o120000
MODE_TREE = int(FileMode.TREE)

Files = dict[str, tuple[int, bytes]]
"""A file tree as plain data: relative path (with '/') -> (git file mode, content)."""


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content (no repository needed)."""
    return str(pygit2.hash(data))


def digest(files: Mapping[str, tuple[int, bytes]]) -> str:
    """A content digest stable across machines: sha256 over the sorted
    (relative path, file kind, sha256 of content) of a tree. The kind is 'x' for
    executable files, 'l' for symbolic links, '-' otherwise."""
    h = hashlib.sha256()
    for path in sorted(files):
        mode, data = files[path]
        h.update(f"{path}\0{mode_flag(mode)}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return "sha256:" + h.hexdigest()


def mode_flag(mode: int) -> str:
    if mode == MODE_LINK:
        return "l"
    return "x" if mode == MODE_EXEC else "-"


def mode_of_path(path: Path) -> int:
    if path.is_symlink():
        return MODE_LINK
    return MODE_EXEC if os.access(path, os.X_OK) else MODE_FILE


def read_worktree_files(root: Path) -> Files:
    """Every file under `root` as {relative path: (mode, content)}; symlinks as links.
    FIFOs, sockets and device files are skipped, as git skips them: reading a FIFO would
    block until something writes to it."""
    out: Files = {}
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        base = Path(dirpath)
        for fn in filenames:
            p = base / fn
            rel = p.relative_to(root).as_posix()
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue  # removed while walking
            if stat.S_ISLNK(st.st_mode):
                out[rel] = (MODE_LINK, str(p.readlink()).encode())
            elif stat.S_ISREG(st.st_mode):
                out[rel] = (mode_of_path(p), p.read_bytes())
    return out


def write_files(dest: Path, files: Mapping[str, tuple[int, bytes]]) -> None:
    """Write a file tree to disk, with executable bits and symlinks."""
    for rel, (mode, data) in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if mode == MODE_LINK:
            p.symlink_to(data.decode())
            continue
        p.write_bytes(data)
        if mode == MODE_EXEC:
            p.chmod(0o755)
