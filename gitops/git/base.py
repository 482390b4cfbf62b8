"""What every git operation shares: commits as values, commit signatures, and the
translation of pygit2's errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pygit2

from gitops.errors import GitError
from gitops.oserrors import refusal

FALLBACK_NAME = "stackctl"
FALLBACK_EMAIL = "stackctl@localhost"


@dataclass(frozen=True)
class CommitInfo:
    id: str
    message: str
    parents: tuple[str, ...]
    tree: str
    author: str
    time: int

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    def trailers(self) -> dict[str, str]:
        """`Key: value` lines of the message's last paragraph."""
        last = self.message.strip().split("\n\n")[-1]
        out: dict[str, str] = {}
        for line in last.splitlines():
            key, sep, value = line.partition(": ")
            if sep and key and " " not in key:
                out[key] = value.strip()
        return out


@contextmanager
def translated(what: str, hint: str | None = None, *,
               git_dir: str | None = None) -> Iterator[None]:
    try:
        yield
    except (pygit2.GitError, OSError) as e:
        # libgit2 reports a full disk, a read-only file system or a lock file left by
        # another process as OSError (or GitError): the machine's doing, not a bug.
        refused = refusal(e, action=what.removeprefix("cannot "), git_dir=git_dir)
        if refused is not None:
            raise refused from e
        raise GitError(f"{what}: {e}", hint=hint) from e
    except (KeyError, ValueError) as e:
        raise GitError(f"{what}: {e}", hint=hint) from e



def signature(repo: pygit2.Repository | None = None, *, kind: str = "AUTHOR") -> pygit2.Signature:
    """GIT_<kind>_NAME/EMAIL from the environment, else user.name/email from the repo's
    config, else 'stackctl <stackctl@localhost>' (so commits never fail on a fresh machine)."""
    name = os.environ.get(f"GIT_{kind}_NAME")
    email = os.environ.get(f"GIT_{kind}_EMAIL")
    if repo is not None and (not name or not email):
        try:
            cfg = repo.config
            name = name or _config_value(cfg, "user.name")
            email = email or _config_value(cfg, "user.email")
        except pygit2.GitError:
            pass
    return pygit2.Signature(name or FALLBACK_NAME, email or FALLBACK_EMAIL)


def _config_value(cfg: pygit2.Config, key: str) -> str | None:
    try:
        return str(cfg[key])
    except (KeyError, pygit2.GitError):
        return None
