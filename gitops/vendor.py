"""Vendor tracking: import an upstream release onto the vendor branch and merge it.

The branch `vendor/<name>` holds only imports: each commit's tree holds only
`vendor/<name>/...`, one commit per release, each the child of the previous import, with
the message `vendor <name> <tag>` and `Vendor-*` trailers. An import then merges that branch
into the current branch with a real two-parent merge commit whose tree is the current tree
with vendor/<name>/ replaced by the import and stackctl.lock updated.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from gitops import git
from gitops.errors import ConfigError, GitError, SourceError, VendorEditedError
from gitops.lock import Lock, LockEntry, read_lock, render_lock
from gitops.remote.pins import RemotePin
from gitops.remote.url import parse_remote
from gitops.remote.vendoring import RemoteState, localize_release, remote_states, trailers
from gitops.repopath import inside
from gitops.source import ResolvedRef, Source, open_source
from gitops.stack import LOCK_FILE, Stack
from gitops.yamlio import load_safe

Progress = Callable[[str], None]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE_FIELDS = ("resources", "components", "bases")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^git@|^git::")


@dataclass(frozen=True)
class RemoteBase:
    """A kustomization entry that pulls a base over the network."""

    file: str  # the kustomization, relative to the stack root
    field: str  # resources, components or bases
    url: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.url}"


@dataclass(frozen=True)
class VendorImport:
    """The outcome of import_release."""

    name: str
    resolved: ResolvedRef
    lock_entry: LockEntry
    vendor_commit: str  # the import's commit on vendor/<name>
    merge_commit: str | None  # None with merge=False, or when nothing changed
    files: int
    remote_bases: tuple[RemoteBase, ...]
    previous: LockEntry | None
    unchanged: bool  # the same content was already vendored and merged
    remotes: tuple[RemotePin, ...] = ()  # remote bases vendored beside the release


@dataclass(frozen=True)
class VendorStatus:
    """What is vendored, and how vendor/<name>/ differs from the pristine import."""

    name: str
    path: str  # vendor/<name>, from the stack root
    entry: LockEntry | None  # None: nothing vendored yet
    modified: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    newer_tags: tuple[str, ...] = ()
    remote_bases: tuple[RemoteBase, ...] = ()
    source_error: str | None = None  # newer tags could not be listed (status goes on)
    branch_commit: str | None = None  # tip of vendor/<name> (None: missing)
    remotes: tuple[RemoteState, ...] = ()  # each vendored remote base and its copy

    @property
    def pristine(self) -> bool:
        return not (self.modified or self.added or self.deleted)


# -- paths -------------------------------------------------------------------------------
def _open(stack: Stack) -> tuple[git.Repo, str]:
    """The repository holding the stack, and the stack root's path inside it."""
    return git.open_with_prefix(stack.root)


_join = git.join_prefix


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _message(stack: Stack, spec: str, kind: str, resolved: ResolvedRef, digest: str,
             extra: str = "", remotes: Iterable[RemotePin] = ()) -> str:
    lines = [
        f"vendor {stack.name} {resolved.name}", "",
        f"Vendor-Source: {spec}",
        f"Vendor-Kind: {kind}",
        f"Vendor-Ref: {resolved.requested}",
        f"Vendor-Resolved: {resolved.name}",
        f"Vendor-Commit: {resolved.commit or 'none'}",
    ]
    if resolved.archive_sha256:
        lines.append(f"Vendor-Archive-Sha256: {resolved.archive_sha256}")
    lines.append(f"Vendor-Digest: {digest}")
    lines += trailers(remotes)
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


# -- remote bases --------------------------------------------------------------------------
def _is_remote(entry: str, kdir: str, known: set[str]) -> bool:
    """Whether kustomize fetches `entry` over the network, told as the import's localizer
    tells it (gitops.remote.url); an entry with a scheme that parses as neither a repository
    nor a file is still listed, since a render refuses it as remote."""
    local = posixpath.normpath(posixpath.join(kdir, entry.split("?", 1)[0]))
    return parse_remote(entry, local_exists=local in known) is not None \
        or _SCHEME.match(entry.strip()) is not None


def find_remote_bases(files: Iterable[str], read: Callable[[str], bytes],
                      *, base: str = "") -> list[RemoteBase]:
    """Kustomizations among `files` (relative paths) whose resources, components or bases
    are remote URLs, e.g. github.com/argoproj/argo-workflows/manifests/base?ref=v3.7.3.
    `base` is prefixed to the reported file names."""
    paths = list(files)
    known: set[str] = set(paths)
    for p in paths:
        d = posixpath.dirname(p)
        while d and d not in known:
            known.add(d)
            d = posixpath.dirname(d)
    out: list[RemoteBase] = []
    for p in sorted(paths):
        if posixpath.basename(p) not in KUSTOMIZATION_NAMES:
            continue
        try:
            doc = load_safe(read(p).decode("utf-8", "replace"), path=p)
        except ConfigError:
            continue  # a broken kustomization is render's business, not the import's
        if not isinstance(doc, dict):
            continue
        for field in _REMOTE_FIELDS:
            entries = doc.get(field)
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if isinstance(entry, str) and _is_remote(entry, posixpath.dirname(p), known):
                    out.append(RemoteBase(file=_join(base, p), field=field, url=entry))
    return out


# -- the vendor branch ---------------------------------------------------------------------
def _entry(stack: Stack) -> LockEntry:
    lock = read_lock(stack.root)
    entry = lock.get(stack.name) if lock else None
    if entry is None:
        raise ConfigError(
            f"nothing is vendored for {stack.name!r}: {stack.lock_path} has no entry for it.",
            hint="Import a release first: 'stackctl vendor import --ref REF'.",
        )
    return entry


def _tree_digest(repo: git.Repo, commit: str, path: str) -> str:
    return git.digest(repo.read_tree(commit, path))


def rebuild_vendor_branch(stack: Stack, *, refetch: bool = False,
                          progress: Progress | None = None) -> str:
    """Recreate vendor/<name> from the lock and return its commit.

    When the lock's vendor commit is still in the repository (it is the second parent of
    the import's merge commit, so a clone of the main branch has it) the branch points at it
    again. Otherwise (or with refetch) the pinned release is fetched again, its digest
    checked against the lock, and the branch recreated as one commit with the same tree."""
    say = progress or (lambda _m: None)
    entry = _entry(stack)
    repo, prefix = _open(stack)
    vpath = _join(prefix, entry.path)
    if not refetch and repo.has_commit(entry.vendor_commit) \
            and _tree_digest(repo, entry.vendor_commit, vpath) == entry.digest:
        repo.set_branch(entry.vendor_branch, entry.vendor_commit,
                        message="stackctl: vendor branch restored from stackctl.lock")
        say(f"restored {entry.vendor_branch} at {entry.vendor_commit[:12]}")
        return entry.vendor_commit
    spec = stack.resolve_source(entry.source)
    say(f"fetching {entry.resolved} again from {entry.source} to rebuild {entry.vendor_branch}")
    src = open_source(spec)
    resolved = src.resolve(entry.commit or entry.resolved)
    files = src.tree(resolved)
    digest, pinned = git.digest(files), entry.upstream_digest or entry.digest
    if digest == pinned and entry.remotes:
        # The release is the one imported; its remotes must be the pinned ones too (a moved
        # tag or a changed file is refused by the pins), and so the localized tree.
        files = localize_release(stack, files, expect=entry.remotes, progress=progress).files
        digest, pinned = git.digest(files), entry.digest
    if digest != pinned:
        raise SourceError(
            f"cannot rebuild {entry.vendor_branch}: {entry.resolved} fetched again from "
            f"{entry.source} has the digest {digest}, but {LOCK_FILE} pins {pinned}. The "
            "upstream release changed after it was imported (a moved tag or a rewritten "
            "archive), so it is not what vendor/ was built from.",
            hint="Point the lock's source at the original release, or fetch the branch "
            f"from a clone that has it (git fetch origin {entry.vendor_branch}).",
        )
    tree = repo.write_tree({f"{vpath}/{p}": v for p, v in files.items()})
    message = _message(stack, entry.source, entry.source_kind,
                       ResolvedRef(requested=entry.ref, name=entry.resolved,
                                   how=entry.resolved_kind, commit=entry.commit,
                                   archive_sha256=entry.archive_sha256),
                       digest, extra=f"Vendor-Rebuilt-From: {entry.vendor_commit}",
                       remotes=entry.remotes)
    commit = repo.create_commit(tree, message, [], branch=entry.vendor_branch)
    say(f"rebuilt {entry.vendor_branch} at {commit[:12]}")
    return commit


def ensure_vendor_branch(stack: Stack, *, progress: Progress | None = None) -> str:
    """The tip of vendor/<name>, rebuilt from the lock when the branch is missing."""
    repo, _ = _open(stack)
    tip = repo.branch_commit(stack.vendor_branch)
    if tip is not None:
        return tip
    return rebuild_vendor_branch(stack, progress=progress)


def pristine_commit(stack: Stack, *, progress: Progress | None = None) -> str:
    """The vendor-branch commit holding exactly what the lock says is vendored: the base
    of a three-way upgrade."""
    entry = _entry(stack)
    repo, prefix = _open(stack)
    tip = repo.branch_commit(stack.vendor_branch)
    if tip is None:  # a fresh clone: restore or rebuild the branch first
        return rebuild_vendor_branch(stack, progress=progress)
    if repo.has_commit(entry.vendor_commit):
        return entry.vendor_commit
    for info in repo.log(tip):
        if info.trailers().get("Vendor-Digest") == entry.digest \
                and _tree_digest(repo, info.id, _join(prefix, entry.path)) == entry.digest:
            return info.id
    raise GitError(
        f"{stack.vendor_branch} has no commit with the release pinned in {LOCK_FILE} "
        f"({entry.resolved}, {entry.digest}).",
        hint=f"Delete the branch (git branch -D {stack.vendor_branch}); stackctl then rebuilds "
        "it from the lock.",
    )


# -- import --------------------------------------------------------------------------------
def _refuse_local_edits(repo: git.Repo, head: str | None, vpath: str,
                        previous: LockEntry | None, stack: Stack) -> None:
    if head is None or repo.commit_tree_id(head, vpath) is None:
        return
    if previous is None:
        raise VendorEditedError(
            f"{vpath}/ already exists but {LOCK_FILE} has no entry for {stack.name!r}, so "
            "stackctl cannot tell upstream files from local edits and will not overwrite it.",
            hint=f"Move the folder away (git mv {vpath} ...) and commit, then import again.",
        )
    if _tree_digest(repo, head, vpath) != previous.digest:
        raise VendorEditedError(
            f"{vpath}/ has local edits since {previous.resolved} was imported; a plain import "
            "would lose them.",
            hint="Run 'stackctl upgrade --vendor REF' to merge the new release with your "
            "edits, or see them with 'stackctl vendor status'.",
        )


def _source_spec(stack: Stack, source: str | None) -> tuple[str, Source]:
    spec = source or stack.source
    return spec, open_source(stack.resolve_source(spec))


def import_release(stack: Stack, *, ref: str | None, source: str | None = None,
                   merge: bool = True, progress: Progress | None = None) -> VendorImport:
    """Import the upstream at `ref` onto vendor/<name> and (with merge) merge it into the
    current branch, updating the working tree, the index and stackctl.lock.

    With merge=False only the vendor branch moves; the returned lock entry is what the lock
    will say once the import is merged (the upgrade engine writes it)."""
    say = progress or (lambda _m: None)
    repo, prefix = _open(stack)
    vpath = _join(prefix, stack.vendor_relpath)
    lock = read_lock(stack.root) or Lock()
    previous = lock.get(stack.name)
    head = repo.head_commit()
    branch = repo.current_branch()
    if merge:
        if branch is None:
            raise GitError("HEAD is detached, so there is no branch to merge the import into.",
                           hint="Switch to a branch (git switch main) and run the import again.")
        repo.require_clean(untracked_under=(vpath,), action=f"import into {vpath}/")
        _refuse_local_edits(repo, head, vpath, previous, stack)
    want = ref or stack.ref
    if not want:
        raise ConfigError("no ref to import: stack.yaml has no 'ref' and --ref was not given.",
                          path=stack.root / "stack.yaml", hint="Pass --ref, e.g. --ref v1.4.")
    spec, src = _source_spec(stack, source)
    say(f"resolving {want} in {spec}")
    resolved = src.resolve(want)
    say(f"reading {resolved.name} ({src.kind})")
    files = src.tree(resolved)
    if not files:
        raise SourceError(f"{resolved.name} in {spec} holds no files; there is nothing to vendor")
    upstream_digest = git.digest(files)
    pins = localize_release(stack, files, expect=previous.remotes if previous else (),
                            progress=progress)
    files = pins.files
    digest = git.digest(files)
    remote = tuple(find_remote_bases(files, lambda p: files[p][1], base=stack.vendor_relpath))

    parent = repo.branch_commit(stack.vendor_branch)
    if parent is None and previous is not None:
        try:
            parent = ensure_vendor_branch(stack, progress=progress)
        except SourceError as e:
            # The previous release cannot be fetched again (source moved or rewritten). The
            # vendored tree is pristine (checked above), so the new import is still exact;
            # it only starts the branch afresh.
            say(f"{stack.vendor_branch} starts afresh: the previous import cannot be "
                f"rebuilt ({e.message})")
    say(f"writing {len(files)} files to {stack.vendor_branch}")
    tree = repo.write_tree({f"{vpath}/{p}": v for p, v in files.items()})
    if parent is not None and repo.commit_info(parent).tree == tree:
        vendor_commit = parent  # this release is the branch's tip already
    else:
        vendor_commit = repo.create_commit(
            tree, _message(stack, spec, src.kind, resolved, digest, remotes=pins.pins),
            [parent] if parent else [], branch=stack.vendor_branch)
    entry = LockEntry(
        name=stack.name, source=spec, source_kind=src.kind, ref=want, resolved=resolved.name,
        resolved_kind=resolved.how, commit=resolved.commit,
        archive_sha256=resolved.archive_sha256, digest=digest, files=len(files),
        path=stack.vendor_relpath, imported_at=_now(), vendor_branch=stack.vendor_branch,
        vendor_commit=vendor_commit,
        upstream_digest=upstream_digest if pins.pins else None, remotes=pins.pins,
    )
    result = VendorImport(name=stack.name, resolved=resolved, lock_entry=entry,
                          vendor_commit=vendor_commit, merge_commit=None, files=len(files),
                          remote_bases=remote, previous=previous, unchanged=False,
                          remotes=pins.pins)
    if not merge:
        return result

    subtree = repo.commit_tree_id(vendor_commit, vpath)
    if head is not None and previous is not None and previous.digest == digest \
            and repo.commit_tree_id(head, vpath) == subtree:
        say(f"{resolved.name} is vendored already; nothing changed")
        return replace(result, lock_entry=previous, unchanged=True)
    base_tree = repo.commit_tree_id(head) if head else None
    new_tree = repo.replace_subtree(base_tree, vpath, subtree)
    new_tree = repo.replace_file(new_tree, _join(prefix, LOCK_FILE),
                                 render_lock(lock.with_entry(entry)).encode())
    was = f" (was {previous.resolved})" if previous else ""
    message = (f"Merge {stack.vendor_branch}: {stack.name} {resolved.name}{was}\n\n"
               f"Vendor-Ref: {want}\nVendor-Resolved: {resolved.name}\n"
               f"Vendor-Digest: {digest}\n")
    merge_commit = repo.create_commit(new_tree, message,
                                      [head, vendor_commit] if head else [vendor_commit])
    say(f"merging {stack.vendor_branch} into {branch}")
    repo.checkout(merge_commit)
    return replace(result, merge_commit=merge_commit)


# -- status --------------------------------------------------------------------------------
def vendor_status(stack: Stack, *, check_source: bool = True,
                  progress: Progress | None = None) -> VendorStatus:
    """Compare vendor/<name>/ in the working tree with the pristine import, list newer
    release tags of the source and remote bases in the vendored kustomizations."""
    lock = read_lock(stack.root)
    entry = lock.get(stack.name) if lock else None
    repo, prefix = _open(stack)
    tip = repo.branch_commit(stack.vendor_branch)
    if entry is None:
        return VendorStatus(name=stack.name, path=stack.vendor_relpath, entry=None,
                            branch_commit=tip)
    vpath = _join(prefix, entry.path)
    pristine = repo.read_tree(pristine_commit(stack, progress=progress), vpath,
                              with_content=False)
    local = git.read_worktree_files(inside(stack.root, entry.path, what=f"the path of {stack.name}",
                                           file=stack.lock_path))
    # Files git ignores are not local additions; upstream files stay compared even when a
    # .gitignore pattern matches them (Kubeflow ships .env files, often ignored).
    local = {p: v for p, v in local.items()
             if p in pristine or not repo.is_ignored(f"{vpath}/{p}")}
    modified, added = [], []
    for p, (mode, data) in local.items():
        old = pristine.get(p)
        if old is None:
            added.append(p)
        elif old != (mode, git.blob_id(data).encode()):
            modified.append(p)
    deleted = [p for p in pristine if p not in local]
    newer: list[str] = []
    source_error = None
    if check_source:
        try:
            newer = open_source(stack.resolve_source(entry.source)).newer_tags(entry.resolved)
        except SourceError as e:
            source_error = str(e)
    remote = find_remote_bases(local, lambda p: local[p][1], base=entry.path)
    return VendorStatus(
        name=stack.name, path=entry.path, entry=entry, modified=tuple(sorted(modified)),
        added=tuple(sorted(added)), deleted=tuple(sorted(deleted)), newer_tags=tuple(newer),
        remote_bases=tuple(remote), source_error=source_error,
        branch_commit=repo.branch_commit(stack.vendor_branch),
        remotes=remote_states(stack.root, entry.remotes),
    )

