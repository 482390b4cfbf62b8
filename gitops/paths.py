"""Where stackctl keeps things outside the repo (all safe to delete)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$STACKCTL_CACHE, else $XDG_CACHE_HOME/stackctl, else ~/.cache/stackctl."""
    explicit = os.environ.get("STACKCTL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stackctl"


def sandbox_bin_dir() -> Path:
    """Binaries built by `make sandbox` (sandbox/build.sh points `current` at the newest)."""
    explicit = os.environ.get("STACKCTL_SANDBOX_BIN")
    if explicit:
        return Path(explicit).expanduser()
    return cache_dir() / "sandbox" / "current" / "bin"


def pinned_kustomize(version: str) -> Path:
    """Where `sandbox/build.sh kustomize VERSION` puts a kustomize release a stack pins."""
    return cache_dir() / "kustomize" / version / "kustomize"


def project_root() -> Path:
    """The source checkout stackctl runs from (it holds sandbox/ and examples/)."""
    return Path(__file__).resolve().parent.parent


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename, so
    that a reader (or a run that was interrupted) never sees a half-written file."""
    import tempfile  # not on a cached render's path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _refused(e, path) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        Path(tmp).replace(path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _refused(e, path) from e
        raise


def _refused(e: OSError, path: Path) -> OSError | Exception:
    """A full disk or a read-only folder is the machine's condition (MachineError, exit 2,
    naming `path` rather than the temporary file); other OSErrors stay as they are."""
    from gitops.oserrors import refusal

    bare = OSError(e.errno, e.strerror)  # the message names `path`, not the temporary file
    return refusal(bare, action=f"write {path}") or e
