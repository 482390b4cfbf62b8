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


def project_root() -> Path:
    """The source checkout stackctl runs from (it holds sandbox/ and examples/)."""
    return Path(__file__).resolve().parent.parent
