"""Localize a release: vendor every remote base its kustomizations pull, and point them at it.

For a release's tree (the files under vendor/<name>/), every kustomization entry that kustomize
would fetch over the network is fetched once (gitops.remote.fetch, through the mirrors) and
vendored inside the tree, under `_remotes/`:

    _remotes/git/<host>/<org>/<repo>/<ref>/...      a git base: the folders the referenced
                                                    path needs, at the repository's layout
    _remotes/https/<host>/<path>/<file>             a file used as a resource, in a folder of
              (+ kustomization.yaml listing it)     its own (kustomize reads no resource file
                                                    outside a kustomization's root)
    <kustomization's folder>/_remotes/https/<host>/<path>   a file a patch or generator reads
                                                    (only readable at or below the root)

and the entry is rewritten to the relative path of its copy. The result depends only on the
release and the remotes' content, so it is the same on every machine and every run; what
was done is returned as one RemotePin per remote (stackctl.lock's `remotes:`). Remotes that
vendored kustomizations pull in turn are followed up to MAX_DEPTH levels.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gitops import git
from gitops.errors import ConfigError, RemoteError
from gitops.remote.fetch import FetchedFile, Fetcher, GitCheckout
from gitops.remote.pins import Localized, RemotePin
from gitops.remote.refs import KUSTOMIZATION_NAMES, entries, is_kustomization, rewrite_text
from gitops.remote.url import FileRemote, GitRemote, Remote, parse_file_url, parse_remote
from gitops.yamlio import load_safe

REMOTES_DIR = "_remotes"
MAX_DEPTH = 5  # remotes of remotes of ...: kustomize has no bound; a cycle needs one
_LICENSES = ("LICENSE", "LICENCE", "COPYING", "NOTICE")


@dataclass(frozen=True)
class Localization:
    """A localized release: its files and one pin per vendored remote."""

    files: git.Files
    pins: tuple[RemotePin, ...]


def _dirs(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for p in paths:
        d = posixpath.dirname(p)
        while d and d not in out:
            out.add(d)
            d = posixpath.dirname(d)
    return out


def _join(*parts: str) -> str:
    return posixpath.normpath(posixpath.join(*[p for p in parts if p])) if any(parts) else ""


def _folder_entry(target: str, kdir: str) -> str:
    """The relative path of a folder as a resources entry; `./` in front unless it starts
    with `..`, so kustomize never reads it as a host-named remote (`github.com/...`)."""
    rel = posixpath.relpath(target, kdir or ".")
    return rel if rel.startswith("..") else "./" + rel


def _doc(files: Mapping[str, tuple[int, bytes]], path: str) -> dict[str, object] | None:
    try:
        doc = load_safe(files[path][1].decode("utf-8", "replace"), path=path)
    except ConfigError:
        return None  # a broken kustomization is the render's business, not the import's
    return doc if isinstance(doc, dict) else None


# -- one repository at one ref ------------------------------------------------------------
@dataclass
class _GitCopy:
    """The part of a repository a release needs: each requested path (a folder whole, or a
    file), what its kustomizations reference inside the repository, and the license files."""

    checkout: GitCheckout
    remote: GitRemote
    folder: str  # in the release tree
    included: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._dirs = _dirs(self.checkout.listing)
        for p in sorted(self.checkout.listing):
            if "/" not in p and p.upper().startswith(_LICENSES):
                self.included.add(p)

    def initial(self) -> list[str]:
        return sorted(self.included)

    def want(self, path: str, *, wanted_by: str) -> list[str]:
        """Include `path` and what it needs; the files newly included (repo paths)."""
        listing = self.checkout.listing
        if path and path not in listing and path not in self._dirs:
            raise RemoteError(
                f"{self.remote.repo} at {self.remote.ref or 'HEAD'} "
                f"({self.checkout.commit[:12]}) has no {path}, which {wanted_by} pulls "
                f"(through {self.checkout.source.describe()}).",
                hint="kustomize would fail on it too: check the path in the URL, or whether "
                "the mirror holds the whole repository.")
        new: list[str] = []
        todo = [path]
        while todo:
            p = todo.pop()
            if p in listing:
                found = [p]
            elif p == "" or p in self._dirs:
                prefix = p + "/" if p else ""
                found = [f for f in listing if f.startswith(prefix)]
            else:
                continue  # a missing file: kustomize names it when it renders
            for f in sorted(found):
                if f in self.included:
                    continue
                self.included.add(f)
                new.append(f)
                if self.checkout.mode(f) == git.MODE_LINK:
                    todo.append(self._link_target(f))
                elif is_kustomization(f):
                    todo.extend(self._local_refs(f))
        return new

    def _inside(self, base: str, rel: str, what: str) -> str:
        target = posixpath.normpath(posixpath.join(base, rel))
        if target == ".." or target.startswith("../") or rel.startswith("/"):
            raise RemoteError(
                f"{self.remote.repo} at {self.remote.ref or 'HEAD'}: {what} points outside "
                f"the repository ({rel}), so it cannot be vendored on its own.",
                hint="Report it to the remote's maintainers; vendor a fixed ref meanwhile.")
        return "" if target == "." else target

    def _link_target(self, link: str) -> str:
        target = self.checkout.read(link).decode("utf-8", "replace")
        return self._inside(posixpath.dirname(link), target, f"the symbolic link {link}")

    def _local_refs(self, kfile: str) -> list[str]:
        data = {kfile: (git.MODE_FILE, self.checkout.read(kfile))}
        doc = _doc(data, kfile)
        if doc is None:
            return []
        kdir = posixpath.dirname(kfile)
        out = []
        for e in entries(doc):
            local = posixpath.normpath(posixpath.join(kdir, e.value.split("?", 1)[0]))
            exists = local in self.checkout.listing or local in self._dirs
            remote = (parse_remote(e.value, local_exists=exists) if e.folder_ok
                      else parse_file_url(e.value))
            if remote is None:
                out.append(self._inside(kdir, e.value, f"{kfile} ({e.field}: {e.value})"))
        return out


# -- the localizer ------------------------------------------------------------------------
class _Localizer:
    def __init__(self, files: git.Files, fetcher: Fetcher, *, base: str,
                 expect: Mapping[tuple[str, str, str | None], RemotePin],
                 max_depth: int) -> None:
        self.out: git.Files = dict(files)
        self.fetcher = fetcher
        self.base = base
        self.expect = expect
        self.max_depth = max_depth
        self.dirs = _dirs(files)
        self.git: dict[tuple[str, str, str | None], _GitCopy] = {}
        self.fetched: dict[tuple[str, str, str | None], FetchedFile] = {}
        self.wrappers: dict[tuple[str, str, str | None], str] = {}
        self.localized: dict[tuple[str, str, str | None], list[Localized]] = {}
        self.rewrites: dict[str, dict[str, str]] = {}  # kustomization -> {old: new}
        self.counts: dict[str, dict[str, int]] = {}
        self.todo: deque[tuple[str, tuple[str, ...]]] = deque()

    def where(self, path: str) -> str:
        return f"{self.base}/{path}" if self.base else path

    def run(self) -> Localization:
        clash = sorted(p for p in self.out if p.split("/", 1)[0] == REMOTES_DIR)
        if clash:
            raise RemoteError(
                f"the release already holds {self.where(REMOTES_DIR)}/ ({clash[0]}), the "
                "folder stackctl vendors remote bases into, so it cannot localize it.",
                hint="Import the release without it, or rename the folder upstream.")
        for p in sorted(self.out):
            if is_kustomization(p):
                self.todo.append((p, ()))
        while self.todo:
            kfile, chain = self.todo.popleft()
            self._scan(kfile, chain)
        for kfile, changes in sorted(self.rewrites.items()):
            mode, data = self.out[kfile]
            text = rewrite_text(data.decode("utf-8"), changes, self.counts[kfile])
            self.out[kfile] = (mode, text.encode("utf-8"))
        return Localization(files=self.out, pins=self._pins())

    def _scan(self, kfile: str, chain: tuple[str, ...]) -> None:
        doc = _doc(self.out, kfile)
        if doc is None:
            return
        kdir = posixpath.dirname(kfile)
        for e in entries(doc):
            if e.folder_ok:
                local = posixpath.normpath(posixpath.join(kdir, e.value.split("?", 1)[0]))
                remote: Remote | None = parse_remote(
                    e.value, local_exists=local in self.out or local in self.dirs)
            else:
                remote = parse_file_url(e.value)
            if remote is None:
                continue
            if len(chain) >= self.max_depth:
                path = " -> ".join([*chain, remote.written])
                raise RemoteError(
                    f"remote bases pull remote bases more than {self.max_depth} levels deep "
                    f"({self.where(kfile)}: {path}); stackctl stops there (a cycle, or a "
                    "chain too long to vendor).",
                    hint="Vendor a ref of the outer remote that pins its own bases, or "
                    "report the chain to its maintainers.")
            local_entry = self._localize(kfile, remote, e.folder_ok, chain)
            changes = self.rewrites.setdefault(kfile, {})
            if changes.setdefault(e.value, local_entry) != local_entry:
                raise RemoteError(
                    f"{self.where(kfile)} uses {e.value} both as a resource and as a file "
                    "(a patch or generator input); stackctl vendors the two differently and "
                    "cannot rewrite one entry two ways.",
                    hint="Report it upstream; kustomize reads such a file differently in the "
                    "two places too.")
            counts = self.counts.setdefault(kfile, {})
            counts[e.value] = counts.get(e.value, 0) + 1
            self.localized.setdefault(remote.key, []).append(Localized(
                file=self.where(kfile), field=e.field, original=e.value, local=local_entry))

    def _put(self, path: str, mode: int, data: bytes) -> None:
        old = self.out.get(path)
        if old is not None and old != (mode, data):
            raise RemoteError(
                f"two remote bases would be vendored at the same place, "
                f"{self.where(path)}, with different content.",
                hint="Their URLs differ only in characters a folder name cannot hold; "
                "report it (docs/vendor.md).")
        self.out[path] = (mode, data)
        self.dirs.update(_dirs([path]))

    def _check_pin(self, key: tuple[str, str, str | None], got: str, label: str) -> None:
        pin = self.expect.get(key)
        if pin is None or pin.pinned == got:
            return
        if pin.kind == "git":
            raise RemoteError(
                f"the tag or branch {pin.ref} of {pin.url} moved: stackctl.lock pins the "
                f"commit {pin.commit}, but {label} has {got}. A moved tag changes what "
                "vendor/ holds without a change to the release.",
                hint="Point the mirror at a copy with the pinned commit. If upstream really "
                "moved it, delete this remote's entry under 'remotes:' in stackctl.lock, "
                "commit, and run the command again to pin the new commit.")
        raise RemoteError(
            f"checksum mismatch for {pin.url}: stackctl.lock pins sha256 {pin.sha256}, but "
            f"{label} serves content with sha256 {got}. The file changed after it was "
            "vendored.",
            hint="Point the mirror at the original file. If upstream really replaced it, "
            "delete this remote's entry under 'remotes:' in stackctl.lock, commit, and run "
            "the command again to pin the new file.")

    def _localize(self, kfile: str, remote: Remote, folder_ok: bool,
                  chain: tuple[str, ...]) -> str:
        kdir = posixpath.dirname(kfile)
        wanted_by = self.where(kfile)
        if isinstance(remote, GitRemote):
            copy = self.git.get(remote.key)
            if copy is None:
                checkout = self.fetcher.git(remote.repo, remote.ref, wanted_by=wanted_by)
                self._check_pin(remote.key, checkout.commit, checkout.source.describe())
                copy = _GitCopy(checkout, remote, f"{REMOTES_DIR}/{remote.folder}")
                self.git[remote.key] = copy
                self._add(copy, copy.initial(), chain, remote)
            self._add(copy, copy.want(remote.path, wanted_by=wanted_by), chain, remote)
            return _folder_entry(_join(copy.folder, remote.path), kdir)
        assert isinstance(remote, FileRemote)
        fetched = self._fetch_file(remote, wanted_by)
        if folder_ok:
            wrapper = f"{REMOTES_DIR}/{remote.folder}"
            name = remote.name
            if name in KUSTOMIZATION_NAMES:
                name = "remote-" + name
            self._put(f"{wrapper}/{name}", git.MODE_FILE, fetched.data)
            self._put(f"{wrapper}/kustomization.yaml", git.MODE_FILE, _wrapper(remote, name))
            self.wrappers[remote.key] = wrapper
            return _folder_entry(wrapper, kdir)
        dest = _join(kdir, REMOTES_DIR, remote.folder)
        self._put(dest, git.MODE_FILE, fetched.data)
        return posixpath.relpath(dest, kdir or ".")

    def _fetch_file(self, remote: FileRemote, wanted_by: str) -> FetchedFile:
        fetched = self.fetched.get(remote.key)
        if fetched is None:
            fetched = self.fetcher.file(remote.url, wanted_by=wanted_by)
            self._check_pin(remote.key, fetched.sha256, fetched.source.describe())
            self.fetched[remote.key] = fetched
        return fetched

    def _add(self, copy: _GitCopy, paths: list[str], chain: tuple[str, ...],
             remote: GitRemote) -> None:
        for p in paths:
            dest = f"{copy.folder}/{p}"
            self._put(dest, copy.checkout.mode(p), copy.checkout.read(p))
            if is_kustomization(p):
                self.todo.append((dest, (*chain, remote.written)))

    def _pins(self) -> tuple[RemotePin, ...]:
        out: list[RemotePin] = []
        for key, copy in self.git.items():
            files = {p: self.out[f"{copy.folder}/{p}"] for p in copy.included}
            out.append(RemotePin(
                url=copy.remote.repo, kind="git", ref=copy.remote.ref,
                commit=copy.checkout.commit, sha256=None, path=self.where(copy.folder),
                digest=git.digest(files), files=len(files),
                localized=tuple(sorted(self.localized.get(key, ()),
                                       key=lambda x: (x.file, x.field, x.original)))))
        for key, fetched in self.fetched.items():
            wrapper = self.wrappers.get(key)
            files = ({p[len(wrapper) + 1:]: v for p, v in self.out.items()
                      if p.startswith(wrapper + "/")} if wrapper else {})
            out.append(RemotePin(
                url=fetched.url, kind="file", ref=None, commit=None, sha256=fetched.sha256,
                path=self.where(wrapper) if wrapper else None,
                digest=git.digest(files) if wrapper else None, files=len(files),
                localized=tuple(sorted(self.localized.get(key, ()),
                                       key=lambda x: (x.file, x.field, x.original)))))
        return tuple(sorted(out, key=lambda p: (p.kind, p.url, p.ref or "")))


def _wrapper(remote: FileRemote, name: str) -> bytes:
    return (f"# Vendored by stackctl from {remote.url}: kustomize reads no resource file\n"
            "# outside a kustomization's folder, so the file has a folder of its own.\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {name}\n").encode()


def localize(files: git.Files, fetcher: Fetcher, *, base: str = "",
             expect: Iterable[RemotePin] = (), max_depth: int = MAX_DEPTH) -> Localization:
    """The release `files` (relative to its vendored root, `base` from the stack root) with
    every remote base vendored and every entry pointing at its copy. `expect`: pins a
    remote must match (a moved tag or a changed file is refused)."""
    return _Localizer(files, fetcher, base=base, expect={p.key: p for p in expect},
                      max_depth=max_depth).run()
