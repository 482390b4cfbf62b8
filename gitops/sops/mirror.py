"""A private copy of a render's input files on a RAM-backed filesystem, with the SOPS files
kustomize must read in clear (generator sources, patches) decrypted, for one build.

Why a copy: the kustomize binary reads files only, from below each kustomization's folder
(LoadRestrictionsRootOnly); it cannot take a kustomization or a generator source from
memory, and a symlink out of its root is refused. So the whole input tree (the files the
render reads, typically a few MB) is copied, and only there are the secrets in clear.

Where: $STACKCTL_SECRETS_TMPDIR, else /dev/shm, else $XDG_RUNTIME_DIR, and only if the
folder is on tmpfs or ramfs (checked in /proc/self/mountinfo): decrypted bytes must never
reach a disk. The folder is mode 0700, its files 0600, and it is removed when the build
ends, whatever ends it: a return, an exception, Ctrl-C, or SIGTERM (a handler removes the
folders of the process, then lets the signal kill it as before). Only SIGKILL or a power
cut can leave one behind, in RAM; the next render removes the folders of dead processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from gitops.errors import SecretsError

ENV_TMPDIR = "STACKCTL_SECRETS_TMPDIR"
PREFIX = "stackctl-sops-"
RAM_FILESYSTEMS = ("tmpfs", "ramfs")
DOCS = "docs/secrets.md"

_live: set[Path] = set()
_lock = threading.Lock()
_previous: object = None


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` (Linux: /proc/self/mountinfo); None when
    it cannot be known."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, right.split()[0]
    return kind


def ram_dir() -> Path:
    """The RAM-backed folder the decrypted copies go into (see the module docstring)."""
    explicit = os.environ.get(ENV_TMPDIR)
    candidates = [explicit] if explicit else ["/dev/shm", os.environ.get("XDG_RUNTIME_DIR")]
    seen = []
    for c in candidates:
        if not c:
            continue
        p = Path(c).expanduser()
        if not (p.is_dir() and os.access(p, os.W_OK | os.X_OK)):
            seen.append(f"{p} (not a writable folder)")
            continue
        kind = filesystem_type(p)
        if kind in RAM_FILESYSTEMS or (kind is None and explicit and sys.platform != "linux"):
            return p
        seen.append(f"{p} ({kind or 'unknown'} filesystem)")
    raise SecretsError(
        "this render decrypts files that kustomize reads (secretGenerator sources or "
        "patches), and stackctl writes those only to a RAM-backed folder, but none was "
        f"found: {', '.join(seen) or 'no candidate'}.",
        hint=f"Set ${ENV_TMPDIR} to a folder on tmpfs (e.g. a 'mount -t tmpfs' mount, or a "
        f"RAM disk on macOS); see {DOCS}.")


def _remove_live(signum: int, frame: FrameType | None) -> None:
    with _lock:
        for d in list(_live):
            shutil.rmtree(d, ignore_errors=True)
        _live.clear()
    prev = _previous
    if callable(prev):
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_cleanup() -> None:
    """Remove the process's decrypted folders on SIGTERM (then die of it as before).
    Only the main thread can install a handler; renders call this from there."""
    global _previous
    if threading.current_thread() is not threading.main_thread() or _previous is not None:
        return
    with contextlib.suppress(ValueError, OSError):
        _previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _remove_live)


def _remove_stale(base: Path) -> None:
    """Folders of processes that died by SIGKILL (the pid is in the name)."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for e in entries:
        if not e.name.startswith(PREFIX):
            continue
        try:
            pid = int(e.name[len(PREFIX):].split("-", 1)[0])
            if e.stat().st_uid != os.getuid() or pid == os.getpid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(e, ignore_errors=True)
        except (ValueError, OSError):
            continue


def _write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def mirrored(files: Sequence[Path], directories: Sequence[Path],
             decrypted: Mapping[Path, bytes]) -> Iterator[tuple[Path, Path]]:
    """(the copy's root, the original root it stands for): every input file copied, those
    in `decrypted` as their plaintext. Paths in the copy are the originals' relative to
    the original root (the common folder of all inputs)."""
    base = ram_dir()
    _remove_stale(base)
    root = Path(os.path.commonpath([str(p) for p in [*files, *directories]]))
    if root in files:
        root = root.parent
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    with _lock:
        _live.add(tmp)
    try:
        for d in directories:
            (tmp / os.path.relpath(d, root)).mkdir(parents=True, exist_ok=True, mode=0o700)
        for f in files:
            data = decrypted.get(f)
            if data is None:
                try:
                    data = f.read_bytes()
                except OSError:
                    continue  # a dangling link: absent in the copy too
            _write(tmp / os.path.relpath(f, root), data)
        yield tmp, root
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with _lock:
            _live.discard(tmp)
