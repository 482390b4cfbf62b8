"""The remote-base steps of `vendor import`, `vendor rebuild`, `vendor status` and `upgrade`:
localize a release for a stack (its mirrors, the lock's pins), and check vendored copies."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gitops import git, untrusted
from gitops.remote.fetch import Fetcher
from gitops.remote.localize import REMOTES_DIR, Localization, localize
from gitops.remote.mirrors import load_mirrors
from gitops.remote.pins import RemotePin
from gitops.stack import Stack

Progress = Callable[[str], None]


def fetcher_for(stack: Stack) -> Fetcher:
    """A fetcher through stack.yaml's mirrors and STACKCTL_MIRRORS."""
    return Fetcher(load_mirrors(dict(stack.mirrors)))


def localize_release(stack: Stack, files: git.Files, *, expect: Iterable[RemotePin] = (),
                     fetcher: Fetcher | None = None,
                     progress: Progress | None = None) -> Localization:
    """The release's files with its remote bases vendored under vendor/<name>/_remotes/."""
    say = progress or (lambda _m: None)
    result = localize(files, fetcher or fetcher_for(stack), base=stack.vendor_relpath,
                      expect=expect)
    if result.pins:  # the remotes' files are untrusted content as much as the release's
        untrusted.check_files(result.files, f"the release with its remote bases for "
                                            f"{stack.vendor_relpath}")
    for pin in result.pins:
        what = f"{pin.ref} ({pin.commit[:12]})" if pin.commit else f"sha256 {pin.pinned[:12]}"
        say(f"vendored the remote base {pin.url} {what} for {len(pin.localized)} entr"
            f"{'y' if len(pin.localized) == 1 else 'ies'}")
    return result


def trailers(pins: Iterable[RemotePin]) -> list[str]:
    """`Vendor-Remote: <url> <ref> <commit>` (git) or `<url> sha256:<hex>` (file) lines."""
    return [f"Vendor-Remote: {p.url} {p.ref or 'HEAD'} {p.commit}" if p.kind == "git"
            else f"Vendor-Remote: {p.url} sha256:{p.sha256}" for p in pins]


@dataclass(frozen=True)
class RemoteState:
    """Whether a remote's vendored copy in the working tree is what was vendored."""

    pin: RemotePin
    state: str  # intact | modified | missing
    detail: str = ""  # which copy differs


def _file_copies(root: Path, pin: RemotePin) -> list[str]:
    """The copies of a file remote that patches or generators read (from the stack root)."""
    out = []
    for loc in pin.localized:
        if not loc.local.startswith(REMOTES_DIR + "/"):
            continue  # a resources entry: the pin's folder, checked by its digest
        out.append(posixpath.normpath(posixpath.join(posixpath.dirname(loc.file), loc.local)))
    return sorted(set(out))


def remote_states(root: Path, pins: Iterable[RemotePin]) -> tuple[RemoteState, ...]:
    """Each remote's vendored copy in the working tree at `root` against the lock."""
    out: list[RemoteState] = []
    for pin in pins:
        state, detail = "intact", ""
        if pin.path is not None:
            folder = root / pin.path
            if not folder.is_dir():
                state, detail = "missing", pin.path
            elif git.digest(git.read_worktree_files(folder)) != pin.digest:
                state, detail = "modified", pin.path
        if state == "intact" and pin.kind == "file":
            for copy in _file_copies(root, pin):
                p = root / copy
                if not p.is_file():
                    state, detail = "missing", copy
                    break
                if hashlib.sha256(p.read_bytes()).hexdigest() != pin.sha256:
                    state, detail = "modified", copy
                    break
        out.append(RemoteState(pin=pin, state=state, detail=detail))
    return tuple(out)
