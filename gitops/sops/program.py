"""The `sops` program, for the master keys stackctl does not open itself: PGP, AWS/GCP/Azure
KMS, HashiCorp Vault, HuaweiCloud KMS, age plugins, SSH and post-quantum age keys.

Lookup order (as for kustomize): $STACKCTL_SOPS, the build of `make sops`
(sandbox/build.sh sops, into the cache), `sops` on PATH. Its output goes through a pipe
into memory; nothing it decrypts is written to disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitops.paths import cache_dir

ENV_SOPS = "STACKCTL_SOPS"
HOW_TO_GET = ("Install sops (https://github.com/getsops/sops) on PATH, or run 'make sops' "
              "(it builds it from Go modules into stackctl's cache), or point $STACKCTL_SOPS "
              "at it.")
TIMEOUT = 300  # a KMS or Vault call that hangs must not hang a render forever


def built_sops() -> Path:
    """Where `make sops` puts the binary (sandbox/build.sh sops)."""
    return cache_dir() / "tools" / "sops" / "current" / "bin" / "sops"


@dataclass(frozen=True)
class Program:
    path: Path
    origin: str


def find_sops() -> Program | None:
    explicit = os.environ.get(ENV_SOPS)
    if explicit:
        p = Path(explicit).expanduser()
        return Program(p, f"${ENV_SOPS}") if p.is_file() and os.access(p, os.X_OK) else None
    built = built_sops()
    if built.is_file() and os.access(built, os.X_OK):
        return Program(built, "the build of 'make sops'")
    on_path = shutil.which("sops")
    return Program(Path(on_path), "PATH") if on_path else None


def looked_at() -> str:
    return f"${ENV_SOPS}, {built_sops()} and PATH"


class ProgramFailed(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


_INPUT_TYPES = {"yaml": "yaml", "json": "json", "dotenv": "dotenv", "ini": "ini",
                "binary": "binary"}


def decrypt_with_program(program: Program, path: Path, fmt: str) -> bytes:
    """`sops decrypt` of a file, in the file's own format, read from its stdout."""
    cmd = [str(program.path), "decrypt", "--input-type", _INPUT_TYPES[fmt],
           "--output-type", _INPUT_TYPES[fmt], str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise ProgramFailed(f"'{' '.join(cmd)}' did not finish in {TIMEOUT} s") from e
    except OSError as e:
        raise ProgramFailed(f"cannot run {program.path}: {e.strerror or e}") from e
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                 if ln.strip() and not ln.lstrip().startswith("[warning]")]
        detail = " ".join(lines[:6])[:600] or "no message"
        raise ProgramFailed(f"'{program.path.name} decrypt' exited with code "
                            f"{proc.returncode}: {detail}")
    return proc.stdout
