"""Reading an upstream release stackctl does not trust: links, special files and sizes.

A release is someone else's data. Whatever its source kind (git, archive, folder), an import
takes from it only regular files, and symbolic links whose target stays inside the release
once every link on the way is followed; it refuses device files, FIFOs, sockets, tar hard
links to anything but an earlier member, and files or trees above the limits below. Files
are read in chunks and counted as they come, so a small archive holding a huge file is
refused at the limit instead of being held in memory (docs/vendor.md, "Untrusted content").

    Limits.from_env()                 the limits, overridable by $STACKCTL_IMPORT_MAX_*
    Budget(limits, where)             counts a release's files and bytes as they are read
    read_stream(f, name, budget)      a file object's bytes, within the limits
    read_folder(root, where)          a release folder's files; links stay links
    read_git_tree(repo, commit, where)  a commit's files, sizes checked before reading
    check_files(files, where)         the limits and the link rule over a tree in memory
    check_links(files, where)         refuse links that leave the release
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from gitops import git
from gitops.errors import FetchTooLargeError, SourceError

ENV_MAX_FILE_SIZE = "STACKCTL_IMPORT_MAX_FILE_SIZE"
ENV_MAX_SIZE = "STACKCTL_IMPORT_MAX_SIZE"
ENV_MAX_FILES = "STACKCTL_IMPORT_MAX_FILES"
ENV_MAX_FETCH = "STACKCTL_IMPORT_MAX_FETCH_SIZE"

# Ten times what the real Kubeflow releases 1.3.0 to 1.11.0 hold at most (a 2.96 MiB CRD
# bundle, 29.7 MiB and 1,846 files in all): room to grow, yet an import's memory stays
# bounded (the whole release is held once, as git objects are written from it).
DEFAULT_MAX_FILE_SIZE = 32 << 20
DEFAULT_MAX_SIZE = 256 << 20
DEFAULT_MAX_FILES = 50_000
# What one git fetch (a git source, a remote base's repository, every branch and tag) may
# download: the histories of kubeflow/manifests and argo-workflows are far below it.
DEFAULT_MAX_FETCH = 2 << 30

_CHUNK = 1 << 20
_MAX_LINK_HOPS = 40  # Linux's limit on links followed in one path lookup (ELOOP)
_SIZE = re.compile(r"^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def format_size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def _setting(name: str, default: int, *, size: bool) -> int:
    """$name as a positive size (64MiB, 64M, 67108864) or count; `default` when unset."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = 0
    if size and (m := _SIZE.match(raw)):
        value = int(m.group(1)) * _UNITS[m.group(2).lower() if m.group(2) else None]
    elif not size and raw.strip().isdigit():
        value = int(raw)
    if value <= 0:
        example = "64MiB" if size else "100000"
        shown = format_size(default) if size else str(default)
        raise SourceError(f"${name} is {raw!r}, which is not a positive "
                          f"{'size' if size else 'number'}.",
                          hint=f"Set it like {name}={example}, or unset it for the default "
                          f"({shown}).")
    return value


@dataclass(frozen=True)
class Limits:
    """What one release may hold: bytes per file, bytes in all, and files."""

    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_size: int = DEFAULT_MAX_SIZE
    max_files: int = DEFAULT_MAX_FILES
    max_fetch: int = DEFAULT_MAX_FETCH

    @classmethod
    def from_env(cls) -> Limits:
        return cls(max_file_size=_setting(ENV_MAX_FILE_SIZE, DEFAULT_MAX_FILE_SIZE, size=True),
                   max_size=_setting(ENV_MAX_SIZE, DEFAULT_MAX_SIZE, size=True),
                   max_files=_setting(ENV_MAX_FILES, DEFAULT_MAX_FILES, size=False),
                   max_fetch=_setting(ENV_MAX_FETCH, DEFAULT_MAX_FETCH, size=True))


def fetch_mirror(url: str, mirror: Path, what: str) -> git.Repo:
    """git.clone_or_fetch_mirror within the fetch limit; `what` names the fetch for the
    message ("the git source X", "the remote base's repository X")."""
    limit = Limits.from_env().max_fetch
    try:
        return git.clone_or_fetch_mirror(url, mirror, max_bytes=limit)
    except FetchTooLargeError as e:
        raise SourceError(
            f"{what} sent more than {format_size(limit)} and its fetch was stopped "
            f"(${ENV_MAX_FETCH}): it is far larger than any release's history should be.",
            hint=_raise_hint(ENV_MAX_FETCH, limit * 2)) from e


def _raise_hint(name: str, at_least: int) -> str:
    mib = max(1, -(-at_least // (1 << 20)))
    return (f"If the release really holds that much, raise the limit (for example "
            f"export {name}={mib}MiB) and run the command again; see docs/vendor.md.")


class Budget:
    """The files and bytes of one release read so far, refused past the limits."""

    def __init__(self, limits: Limits, where: str) -> None:
        self.limits = limits
        self.where = where
        self.files = 0
        self.total = 0

    def count_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise SourceError(
                f"{self.where} holds more than {self.limits.max_files:,} files, the limit of "
                f"one release (${ENV_MAX_FILES}).",
                hint=f"If the release really holds that many, raise the limit (for example "
                f"export {ENV_MAX_FILES}={self.limits.max_files * 2}) and run the command "
                "again; see docs/vendor.md.")

    def check_size(self, name: str, size: int, *, exact: bool = True) -> None:
        """Refuse one file of `size` bytes (`exact`: its whole size; else read so far)."""
        if size > self.limits.max_file_size:
            what = format_size(size) if exact else f"more than {format_size(size - 1)}"
            raise SourceError(
                f"{self.where}: {name} is {what}, above the limit of "
                f"{format_size(self.limits.max_file_size)} for one file "
                f"(${ENV_MAX_FILE_SIZE}).",
                hint=_raise_hint(ENV_MAX_FILE_SIZE, size * 2))

    def add(self, name: str, size: int) -> None:
        """Count `size` more bytes (of the file `name`) towards the release's total."""
        self.total += size
        if self.total > self.limits.max_size:
            raise SourceError(
                f"{self.where} holds more than {format_size(self.limits.max_size)} of files "
                f"(the limit of one release, ${ENV_MAX_SIZE}); it was still reading {name}.",
                hint=_raise_hint(ENV_MAX_SIZE, self.limits.max_size * 2))

    def take(self, name: str, size: int) -> None:
        """One more file of `size` bytes, before it is read."""
        self.count_file()
        self.check_size(name, size)
        self.add(name, size)


def read_stream(f: IO[bytes], name: str, budget: Budget, *, size: int | None = None) -> bytes:
    """The bytes of an open file, counted against the budget. `size`, when the container
    declares it, is checked before anything is read; the stream is capped all the same
    (a zip entry's declared size is only a claim)."""
    budget.take(name, size or 0)
    cap = budget.limits.max_file_size
    chunks: list[bytes] = []
    got = 0
    while True:
        chunk = f.read(min(_CHUNK, cap + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        budget.check_size(name, got, exact=False)
    budget.add(name, got - (size or 0))
    return b"".join(chunks)


def refuse_special(where: str, name: str, what: str) -> SourceError:
    return SourceError(
        f"{where}: {name} is not a regular file, folder or link but {what}; stackctl never "
        "imports device files, FIFOs or sockets (reading one could block or never end).",
        hint="Import a release without it, or ask its publisher to remove it.")


def describe_mode(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return f"a special file (mode {stat.S_IFMT(mode):o})"


# -- archives ---------------------------------------------------------------------------
def zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
               budget: Budget) -> tuple[int, bytes]:
    """A zip entry as (mode, bytes): a file or a link; anything else refused."""
    unix = info.external_attr >> 16
    kind = stat.S_IFMT(unix)
    if kind not in (0, stat.S_IFREG, stat.S_IFLNK):  # 0: made where files have no Unix mode
        raise refuse_special(budget.where, name, describe_mode(unix))
    with zf.open(info) as f:
        data = read_stream(f, name, budget, size=info.file_size)
    if kind == stat.S_IFLNK:
        return git.MODE_LINK, data
    return (git.MODE_EXEC if unix & 0o111 else git.MODE_FILE), data


def tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo, name: str, earlier: git.Files,
               budget: Budget) -> tuple[int, bytes]:
    """A tar member as (mode, bytes): a file, a link, or a hard link to an `earlier` member
    (its content); anything else refused."""
    if member.issym():
        budget.take(name, len(member.linkname))
        return git.MODE_LINK, member.linkname.encode("utf-8", "surrogateescape")
    if member.islnk():
        # A hard link shares an earlier member's content; tarfile would look anything else
        # up by name (and fail), and an extractor would link to a file of the host.
        p = PurePosixPath(member.linkname.replace("\\", "/"))
        parts = [x for x in p.parts if x not in ("", ".")]
        safe = parts and not p.is_absolute() and ".." not in parts
        found = earlier.get("/".join(parts)) if safe else None
        if found is None:
            raise SourceError(
                f"{budget.where}: {name} is a hard link to {member.linkname}, which is not an "
                "earlier file of the archive; stackctl imports only hard links within the "
                "archive.",
                hint="Import a release without it, or ask its publisher to store the file "
                "itself.")
        budget.take(name, len(found[1]))
        return found
    if not member.isfile():
        raise refuse_special(budget.where, name, _TAR_KINDS.get(
            member.type, f"a member of tar type {member.type!r}"))
    f = tf.extractfile(member)
    if f is None:  # pragma: no cover - isfile() members always have content
        raise SourceError(f"{budget.where}: cannot read {name}")
    with f:
        data = read_stream(f, name, budget, size=member.size)
    return (git.MODE_EXEC if member.mode & 0o111 else git.MODE_FILE), data


_TAR_KINDS = {tarfile.FIFOTYPE: "a FIFO", tarfile.CHRTYPE: "a character device",
              tarfile.BLKTYPE: "a block device"}


# -- folders ----------------------------------------------------------------------------
def read_folder(root: Path, where: str, limits: Limits | None = None) -> git.Files:
    """Every file below `root` (a release folder) as {relative path: (mode, bytes)}: links
    as links (never followed, also to folders), `.git` left out, special files refused."""
    budget = Budget(limits or Limits.from_env(), where)
    out: git.Files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        keep = []
        for d in dirnames:
            if d == ".git":
                continue
            if (base / d).is_symlink():
                filenames.append(d)  # a link to a folder is a link of the release
            else:
                keep.append(d)
        dirnames[:] = keep
        for fn in filenames:
            p = base / fn
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                budget.take(rel, st.st_size)
                out[rel] = (git.MODE_LINK, os.fsencode(p.readlink()))
                continue
            if not stat.S_ISREG(st.st_mode):
                raise refuse_special(where, rel, describe_mode(st.st_mode))
            # O_NOFOLLOW: the file checked above is the file read (no link swapped in).
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = read_stream(f, rel, budget, size=st.st_size)
            # Git's notion of executable: the owner's execute bit.
            out[rel] = (git.MODE_EXEC if st.st_mode & stat.S_IXUSR else git.MODE_FILE, data)
    check_links(out, where)
    return out


# -- git ----------------------------------------------------------------------------------
def read_git_tree(repo: git.Repo, commit: str, where: str,
                  limits: Limits | None = None) -> git.Files:
    """A commit's files, each blob's size checked (from its header) before any is read."""
    budget = Budget(limits or Limits.from_env(), where)
    for path, (_, blob) in sorted(repo.read_tree(commit, with_content=False).items()):
        budget.take(path, repo.blob_size(blob.decode()))
    files = repo.read_tree(commit)
    check_links(files, where)
    return files


# -- a whole tree -------------------------------------------------------------------------
def check_files(files: Mapping[str, tuple[int, bytes]], where: str,
                limits: Limits | None = None) -> None:
    """The limits and the link rule over a tree already in memory (a release with its
    remote bases vendored beside it, each part read within the limits)."""
    budget = Budget(limits or Limits.from_env(), where)
    for path, (_, data) in sorted(files.items()):
        budget.take(path, len(data))
    check_links(files, where)


def check_blob_size(size: int, name: str, where: str) -> None:
    """Refuse one file of `size` bytes above the per-file limit, before reading it."""
    Budget(Limits.from_env(), where).check_size(name, size)


# -- links --------------------------------------------------------------------------------
class _Outside(Exception):
    pass


def _follow(parts: list[str], target: str, links: Mapping[str, str], hops: list[int]
            ) -> list[str]:
    """The path (as parts from the release's top) that `target`, a link's target read from
    the folder `parts`, leads to, following links on the way as the kernel would."""
    if not target or target.startswith("/"):
        raise _Outside
    out = list(parts)
    for comp in target.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not out:
                raise _Outside
            out.pop()
            continue
        out.append(comp)
        key = "/".join(out)
        if key in links:
            hops[0] -= 1
            if hops[0] < 0:
                raise _Outside  # a loop: it leads nowhere a render could use
            out = _follow(out[:-1], links[key], links, hops)
    return out


def check_links(files: Mapping[str, tuple[int, bytes]], where: str) -> None:
    """Refuse a release holding a link that leads outside its own tree: an absolute target,
    `..` above the top, or a path through other links that ends outside (`a/b -> ..` and
    `c -> a/b/..`). Resolution follows the links of the release itself, never the disk."""
    links = {p: data.decode("utf-8", "surrogateescape")
             for p, (mode, data) in files.items() if mode == git.MODE_LINK}
    for path in sorted(links):
        try:
            _follow(path.split("/")[:-1], links[path], links, [_MAX_LINK_HOPS])
        except _Outside:
            raise SourceError(
                f"{where} holds a link {path} -> {links[path]} that leads outside the release "
                "(or loops); stackctl never imports a link it would have to follow out of "
                "vendor/.",
                hint="Links that stay inside the release are kept. Import a release without "
                "this one, or ask its publisher to replace it with the file it points to."
            ) from None
