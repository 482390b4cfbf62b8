"""Where the sandbox's binaries are (built by `make sandbox`) and what versions they are."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gitops.errors import SandboxError
from gitops.paths import sandbox_bin_dir

# Start order; `down` stops them in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def find_binaries(bin_dir: Path | None = None) -> dict[str, Path]:
    """The path of every component's binary; SandboxError naming the missing ones."""
    where = bin_dir if bin_dir is not None else sandbox_bin_dir()
    found = {name: where / name for name in COMPONENTS}
    missing = [name for name, path in found.items() if not (path.is_file() and
                                                             _executable(path))]
    if missing:
        raise SandboxError(
            f"the sandbox binaries {', '.join(missing)} are missing from {where}.",
            hint="Run 'make sandbox' in the stackctl checkout to build them (Go toolchain "
                 "needed; the first build takes about 11 minutes, later runs are no-ops), "
                 "or set STACKCTL_SANDBOX_BIN to a folder holding them.",
        )
    return found


def _executable(path: Path) -> bool:
    import os

    return os.access(path, os.X_OK)


_VERSION = re.compile(r"v?\d+\.\d+\.\d+[\w.+-]*")


def version_of(binary: Path) -> str:
    """The version the binary reports with --version ("v1.34.4"), or "unknown"."""
    try:
        proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = _VERSION.search(proc.stdout + proc.stderr)
    if not m:
        return "unknown"
    text = m.group(0)
    return text if text.startswith("v") else f"v{text}"
