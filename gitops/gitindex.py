"""What git already knows about a working tree, read from git's own files without libgit2:
the blob ids that the index's stat cache vouches for, and the commit HEAD points to.

The render cache's hot path uses this instead of pygit2 (whose import alone costs more than
a cached render): a file whose stat data (mtime, ctime, inode, size) equals its index
entry's, and that was not written in the same clock tick as the index (git's racy-git
rule), has the content of the entry's blob; any other file is read and hashed. Nothing
here trusts the index's flags: an assume-unchanged or skip-worktree entry is vouched for
by its stat data like any other, so a file changed behind such a flag is hashed. Anything
this reader does not know (a split index, an unknown version, a reftable) makes it answer
"unknown", and the caller hashes content: slower, never wrong. Format: gitformat-index(5).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

_ENTRY = struct.Struct(">10I")
_FLAGS = struct.Struct(">H")
_EXTENDED = 0x4000  # flags: an extended-flags word follows (version 3+)
_INTENT_TO_ADD = 0x2000  # extended flags: `git add -N`, the blob id is not the content
_REGULAR = 0o100000 >> 12
_S_IFMT = 0o170000


@dataclass(frozen=True)
class GitDir:
    """A working tree and where git keeps its data: `git_dir` holds HEAD and the index
    (.git, or .git/worktrees/<name> for a linked worktree), `common_dir` the refs, the
    objects and the config shared by every worktree."""

    worktree: Path
    git_dir: Path
    common_dir: Path


def find_git_dir(start: Path) -> GitDir | None:
    """The git working tree holding `start` (a folder), as git finds it: the nearest
    folder above with a `.git` folder, or a `.git` file naming the git dir."""
    here = Path(os.path.abspath(start))  # noqa: PTH100 (logical, as git sees it: no link resolved)
    for d in (here, *here.parents):
        dot = d / ".git"
        try:
            if dot.is_dir():
                git_dir = dot
            elif dot.is_file():
                text = dot.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                git_dir = Path(os.path.normpath(d / text[len("gitdir:"):].strip()))
            else:
                continue
            common = git_dir
            commondir = git_dir / "commondir"
            if commondir.is_file():
                common = Path(os.path.normpath(
                    git_dir / commondir.read_text(encoding="utf-8").strip()))
        except (OSError, UnicodeDecodeError):
            return None
        return GitDir(worktree=d, git_dir=git_dir, common_dir=common)
    return None


@dataclass(frozen=True)
class Index:
    """The index's regular-file entries that can vouch for content: path -> (ctime ns,
    mtime ns, inode, size, blob id), as recorded; `written_ns` is the index file's mtime."""

    entries: dict[str, tuple[int, int, int, int, str]]
    written_ns: int
    oid_size: int  # 20 (sha1) or 32 (sha256)

    def blob_id(self, rel: str, st: os.stat_result) -> str | None:
        """The blob id of the file at `rel` (relative to the worktree, '/'-separated)
        with stat data `st`, when the index vouches for it; None otherwise."""
        e = self.entries.get(rel)
        if e is None:
            return None
        ctime, mtime, ino, size, oid = e
        if (st.st_mode & _S_IFMT) != stat.S_IFREG or st.st_mtime_ns != mtime \
                or st.st_ctime_ns != ctime or (st.st_ino & 0xFFFFFFFF) != ino \
                or (st.st_size & 0xFFFFFFFF) != size:
            return None
        # Racy git: a file changed in the same tick as the index was written has stat data
        # equal to the entry's but other content (Documentation/technical/racy-git.txt).
        if mtime >= self.written_ns or ctime >= self.written_ns:
            return None
        return oid


def blob_id(data: bytes, oid_size: int = 20) -> str:
    """The id git gives a blob with this content (sha1, or sha256 in a sha256 repo)."""
    h = hashlib.sha1(usedforsecurity=False) if oid_size == 20 else hashlib.sha256()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The offset encoding of index version 4 (varint.c in git)."""
    c = data[pos]
    pos += 1
    val = c & 0x7F
    while c & 0x80:
        c = data[pos]
        pos += 1
        val = ((val + 1) << 7) | (c & 0x7F)
    return val, pos


def read_index(gd: GitDir) -> Index | None:
    """The index of `gd`, or None when there is none or this reader cannot vouch for it."""
    path = gd.git_dir / "index"
    try:
        with path.open("rb") as f:
            written = os.fstat(f.fileno()).st_mtime_ns
            data = f.read()
    except OSError:
        return None
    try:
        return _parse(data, written, _oid_size(gd))
    except (struct.error, IndexError, ValueError):
        return None  # torn or foreign: the caller hashes content


def _oid_size(gd: GitDir) -> int:
    try:
        config = (gd.common_dir / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 20
    return 32 if re.search(r"(?im)^\s*objectformat\s*=\s*sha256", config) else 20


def _parse(data: bytes, written: int, oid_size: int) -> Index | None:
    if data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4):
        return None
    entries: dict[str, tuple[int, int, int, int, str]] = {}
    pos = 12
    prev = b""
    fixed = 40 + oid_size  # stat fields and the id, before the flags
    for _ in range(count):
        cs, cn, ms, mn, _dev, ino, mode, _uid, _gid, size = _ENTRY.unpack_from(data, pos)
        oid = data[pos + 40:pos + fixed].hex()
        (flags,) = _FLAGS.unpack_from(data, pos + fixed)
        p = pos + fixed + 2
        ext = 0
        if flags & _EXTENDED:
            (ext,) = _FLAGS.unpack_from(data, p)
            p += 2
        if version == 4:
            strip, p = _varint(data, p)
            end = data.index(b"\0", p)
            name = prev[:len(prev) - strip] + data[p:end]
            pos = end + 1
        else:
            namelen = flags & 0xFFF
            end = data.index(b"\0", p) if namelen == 0xFFF else p + namelen
            name = data[p:end]
            pos += ((end - pos) + 8) & ~7  # NUL-padded to a multiple of 8
        prev = name
        stage = (flags >> 12) & 3
        if stage == 0 and not ext & _INTENT_TO_ADD and mode >> 12 == _REGULAR:
            entries[name.decode("utf-8", "surrogateescape")] = (
                cs * 1_000_000_000 + cn, ms * 1_000_000_000 + mn, ino, size, oid)
    # A split index keeps most entries in a shared file this reader does not follow.
    while pos + 8 <= len(data) - oid_size:
        sig = data[pos:pos + 4]
        (size,) = struct.unpack_from(">I", data, pos + 4)
        if sig == b"link":
            return None
        pos += 8 + size
    return Index(entries=entries, written_ns=written, oid_size=oid_size)


# Content filters make a working-tree file differ from its blob while git calls it clean
# (core.autocrlf, and the text/eol/filter/ident/working-tree-encoding attributes), so that
# the blob id no longer names what kustomize reads. Where one may apply, content is hashed.
_FILTER_CONFIG = re.compile(r"(?im)^\s*(autocrlf|attributesfile)\s*=|^\s*\[\s*include")


def filters_possible(gd: GitDir, index: Index) -> bool:
    """Whether any content filter may apply in this working tree (conservatively)."""
    if any(p == ".gitattributes" or p.endswith("/.gitattributes") for p in index.entries):
        return True
    if (gd.common_dir / "info" / "attributes").exists():
        return True
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "git"
    if (xdg / "attributes").exists():
        return True
    configs = [gd.common_dir / "config", gd.git_dir / "config.worktree", xdg / "config",
               Path.home() / ".gitconfig"]
    if not os.environ.get("GIT_CONFIG_NOSYSTEM"):
        configs.append(Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
    if os.environ.get("GIT_CONFIG_GLOBAL"):
        configs.append(Path(os.environ["GIT_CONFIG_GLOBAL"]))
    if any(k.startswith("GIT_CONFIG_KEY_") or k == "GIT_CONFIG_PARAMETERS"
           for k in os.environ):
        return True
    for c in configs:
        try:
            text = c.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _FILTER_CONFIG.search(text):
            return True
    return False


_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def head_commit(gd: GitDir) -> str | None:
    """The commit id HEAD points to; None before the first commit, or when HEAD is kept
    where this reader does not look (a reftable)."""
    try:
        head = (gd.git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    for _ in range(5):  # symbolic refs may chain
        if _OID.match(head):
            return head
        if not head.startswith("ref:"):
            return None
        ref = head[4:].strip()
        base = gd.git_dir if ref == "HEAD" or not ref.startswith("refs/") else gd.common_dir
        try:
            head = (base / ref).read_text(encoding="utf-8").strip()
            continue
        except FileNotFoundError:
            head = _packed(gd.common_dir, ref) or ""
            if not head:
                return None
        except (OSError, UnicodeDecodeError):
            return None
    return head if _OID.match(head) else None


def _packed(common: Path, ref: str) -> str | None:
    try:
        text = (common / "packed-refs").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    suffix = " " + ref
    for line in text.splitlines():
        if line.endswith(suffix) and not line.startswith(("#", "^")):
            return line.split(" ", 1)[0]
    return None
