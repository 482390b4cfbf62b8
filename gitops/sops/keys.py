"""The age identities of the user's environment, found where the `sops` program finds them
(age/keysource.go, loadIdentities): every one of

- $SOPS_AGE_KEY: identities in the variable itself (several per line allowed);
- $SOPS_AGE_KEY_FILE: a keys file;
- $SOPS_AGE_KEY_CMD: a command printing identities ($SOPS_AGE_RECIPIENT is not set: one
  run serves every file);
- the user's keys file: $XDG_CONFIG_HOME/sops/age/keys.txt, else ~/.config/sops/age/keys.txt
  (on macOS ~/Library/Application Support/sops/age/keys.txt unless XDG_CONFIG_HOME is set).

Identities this module cannot use itself (passphrase-protected keys files, age plugins,
post-quantum keys, SSH keys) are noted, so that a message can say the `sops` program is
needed for them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitops.sops.age import AgeError, Identity, parse_identities

ENV_KEY = "SOPS_AGE_KEY"
ENV_KEY_FILE = "SOPS_AGE_KEY_FILE"
ENV_KEY_CMD = "SOPS_AGE_KEY_CMD"
SSH_ENV = ("SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_AGE_SSH_PRIVATE_KEY_CMD")


@dataclass(frozen=True)
class KeyRing:
    """The identities found, and a line per place looked at (for messages; never a key)."""

    identities: tuple[Identity, ...]
    looked: tuple[str, ...]
    needs_program: tuple[str, ...]  # identities only the sops program can use

    def recipients(self) -> frozenset[str]:
        return frozenset(i.recipient for i in self.identities)

    def where(self) -> str:
        return "; ".join(self.looked)


def user_keys_file(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_CONFIG_HOME")
    if xdg:
        base = Path(xdg)
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path.home() / ".config"
    return base / "sops" / "age" / "keys.txt"


def _read(text: str, where: str, several: bool, looked: list[str], ids: list[Identity],
          others: list[str]) -> None:
    if text.lstrip().startswith(("age-encryption.org", "-----BEGIN AGE")):
        looked.append(f"{where}: a passphrase-protected keys file (needs the sops program)")
        others.append(f"the passphrase-protected keys file of {where}")
        return
    try:
        found, other = parse_identities(text, several_per_line=several)
    except AgeError as e:
        looked.append(f"{where}: unreadable ({e})")
        return
    ids.extend(found)
    others.extend(f"{o} in {where}" for o in other)
    n = len(found)
    looked.append(f"{where}: {n} age identit{'y' if n == 1 else 'ies'}"
                  + (f" and {len(other)} other" if other else ""))


def _load(environ: Mapping[str, str]) -> KeyRing:
    ids: list[Identity] = []
    looked: list[str] = []
    others: list[str] = []
    if ENV_KEY in environ:
        _read(environ[ENV_KEY], f"${ENV_KEY}", True, looked, ids, others)
    else:
        looked.append(f"${ENV_KEY}: not set")
    key_file = environ.get(ENV_KEY_FILE)
    if key_file is not None:
        p = Path(key_file).expanduser()
        try:
            _read(p.read_text(encoding="utf-8"), f"${ENV_KEY_FILE} ({p})", False, looked,
                  ids, others)
        except (OSError, UnicodeDecodeError) as e:
            looked.append(f"${ENV_KEY_FILE} ({p}): cannot be read "
                          f"({getattr(e, 'strerror', None) or e})")
    else:
        looked.append(f"${ENV_KEY_FILE}: not set")
    cmd = environ.get(ENV_KEY_CMD)
    if cmd:
        try:
            proc = subprocess.run(shlex.split(cmd), capture_output=True, check=False,
                                  stdin=subprocess.DEVNULL, timeout=120)
            if proc.returncode != 0:
                looked.append(f"${ENV_KEY_CMD}: exited with code {proc.returncode}")
            else:
                _read(proc.stdout.decode("utf-8", "replace"), f"${ENV_KEY_CMD}", False,
                      looked, ids, others)
        except (OSError, ValueError, subprocess.TimeoutExpired) as e:
            looked.append(f"${ENV_KEY_CMD}: cannot be run ({e})")
    user = user_keys_file(environ)
    try:
        _read(user.read_text(encoding="utf-8"), str(user), False, looked, ids, others)
    except FileNotFoundError:
        looked.append(f"{user}: no such file")
    except (OSError, UnicodeDecodeError) as e:
        looked.append(f"{user}: cannot be read ({getattr(e, 'strerror', None) or e})")
    for var in SSH_ENV:
        if environ.get(var):
            others.append(f"the SSH key of ${var}")
    return KeyRing(identities=tuple(dict.fromkeys(ids)), looked=tuple(looked),
                   needs_program=tuple(others))


_cache: dict[tuple[object, ...], KeyRing] = {}
_lock = threading.Lock()


def _stamp(path: str | Path | None) -> object:
    if path is None:
        return None
    try:
        st = Path(path).expanduser().stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size)


def key_ring(environ: Mapping[str, str] | None = None) -> KeyRing:
    """The identities of the environment, read once per process for the same variables and
    files (renders of several clusters share them; a key command runs once)."""
    env = os.environ if environ is None else environ
    cache_key = (env.get(ENV_KEY), _stamp(env.get(ENV_KEY_FILE)), env.get(ENV_KEY_CMD),
                 _stamp(user_keys_file(env)), tuple(env.get(v) for v in SSH_ENV))
    with _lock:
        ring = _cache.get(cache_key)
        if ring is None:
            ring = _cache[cache_key] = _load(env)
        return ring
