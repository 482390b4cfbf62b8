"""Upstream sources and how a ref a person writes resolves in them.

Four kinds of source, told apart by the source string alone:

    git             a git URL (https://, ssh://, git@host:path, file://) or a local
                    repository (bare or not); refs are its tags, branches and commits
    archive         one .tar.gz/.tgz/.zip file: one release (a single top-level folder
                    inside it is stripped)
    archive-folder  a folder of release archives named <anything>-<tag>.tar.gz|.tgz|.zip
    release-folder  a folder holding one subfolder per release tag (v1.3.0/, v1.4.0/, ...)

Refs resolve the same way in every kind: an exact tag, branch or commit id wins; otherwise
`v1.4` (or `1.4`) picks the highest release v1.4.x by semantic version, skipping
pre-releases (-rc.1, -alpha) unless one is named exactly.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gitops import git, untrusted
from gitops.errors import GitError, SourceError
from gitops.paths import cache_dir

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")

_VERSION = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_ARCHIVE_TAG = re.compile(r"^.+?-(v?\d[0-9A-Za-z.+-]*)$")
_HEX = re.compile(r"^[0-9a-f]{7,40}$")


# -- versions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    """A release version as tags write it: v1.4.1, 1.4, v1.5.0-rc.1."""

    parts: tuple[int, ...]  # as written: one to three numbers
    pre: str | None

    @classmethod
    def parse(cls, text: str) -> Version | None:
        m = _VERSION.match(text.strip())
        if not m:
            return None
        parts = tuple(int(g) for g in m.groups()[:3] if g is not None)
        return cls(parts=parts, pre=m.group(4))

    @property
    def full(self) -> tuple[int, int, int]:
        p = (*self.parts, 0, 0, 0)
        return p[0], p[1], p[2]

    def sort_key(self) -> tuple[object, ...]:
        # Semantic versioning's precedence: a pre-release sorts before its release;
        # numeric identifiers compare as numbers and before alphanumeric ones.
        if self.pre is None:
            pre: tuple[object, ...] = (1,)
        else:
            pre = (0, *((0, int(i), "") if i.isdigit() else (1, 0, i)
                        for i in self.pre.split(".")))
        return (self.full, pre)


def version_key(tag: str) -> tuple[object, ...]:
    """Sort key putting tags in version order; tags that are not versions sort first."""
    v = Version.parse(tag)
    return (0, tag) if v is None else (1, v.sort_key(), tag)


def sort_tags(tags: Iterable[str]) -> list[str]:
    return sorted(tags, key=version_key)


def match_release(ref: str, tags: Iterable[str]) -> str | None:
    """The highest tag matching the version prefix `ref` (v1.4 -> v1.4.x), pre-releases
    only when `ref` names one exactly."""
    want = Version.parse(ref)
    if want is None:
        return None
    best: tuple[tuple[object, ...], str] | None = None
    n = len(want.parts)
    for tag in tags:
        v = Version.parse(tag)
        if v is None or v.full[:n] != want.parts:
            continue
        if v.pre is not None and not (n == 3 and v.pre == want.pre):
            continue
        if want.pre is not None and v.pre != want.pre:
            continue
        key = v.sort_key()
        if best is None or key > best[0]:
            best = (key, tag)
    return best[1] if best else None


def nearest_tags(ref: str, tags: Iterable[str], n: int = 5) -> list[str]:
    """The tags closest to what the person wrote, for an error message."""
    tags = list(tags)
    want = Version.parse(ref)
    if want is not None:  # versions: the highest of the same major, else the highest overall
        parsed = {t: v for t in tags if (v := Version.parse(t)) is not None}
        same = [t for t, v in parsed.items() if v.full[0] == want.full[0]]
        if same or parsed:
            return sort_tags(same or parsed)[-n:]
    close = difflib.get_close_matches(ref, tags, n=n, cutoff=0.5)
    if close:
        return sort_tags(close)
    return sort_tags(tags)[-n:]


# -- resolved refs and the base class ----------------------------------------------------
@dataclass(frozen=True)
class ResolvedRef:
    """What a requested ref resolved to in one source."""

    requested: str
    name: str  # the tag, branch or commit id it resolved to (an archive's release label)
    how: str  # "tag", "branch", "commit" or "release" (an archive without a tag)
    commit: str | None = None  # git sources only
    location: str | None = None  # archive file or release folder (non-git kinds)
    archive_sha256: str | None = None  # archive kinds only


class Source:
    """An upstream source: list its tags, resolve a ref, read a release's files."""

    kind: str = ""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def tags(self) -> list[str]:
        """Tag names in version order (tags that are not versions first)."""
        raise NotImplementedError

    def branches(self) -> list[str]:
        return []

    def _lookup_commit(self, ref: str) -> str | None:
        return None

    def _resolved(self, requested: str, name: str, how: str) -> ResolvedRef:
        raise NotImplementedError

    def tree(self, resolved: ResolvedRef) -> git.Files:
        """The release's files: {relative path: (git mode, content)}."""
        raise NotImplementedError

    def resolve(self, ref: str) -> ResolvedRef:
        ref = ref.strip()
        if not ref:
            raise SourceError("an empty ref cannot be resolved.",
                              hint="Pass a tag, branch or commit, e.g. --ref v1.4.")
        tags = self.tags()
        if ref in tags:
            return self._resolved(ref, ref, "tag")
        if ref in self.branches():
            return self._resolved(ref, ref, "branch")
        commit = self._lookup_commit(ref)
        if commit is not None:
            return self._resolved(ref, commit, "commit")
        tag = match_release(ref, tags)
        if tag is not None:
            return self._resolved(ref, tag, "tag")
        return self._unresolved(ref, tags)

    def _unresolved(self, ref: str, tags: list[str]) -> ResolvedRef:
        near = nearest_tags(ref, tags)
        listed = f"Nearest tags: {', '.join(near)}." if near else "The source has no tags."
        raise SourceError(
            f"ref {ref!r} does not resolve in {self.spec}: it is no tag, branch or commit "
            f"there, and no release matches {ref}.*. {listed}",
            hint="Pass one of those tags with --ref.",
        )

    def files(self, resolved: ResolvedRef) -> dict[str, bytes]:
        return {p: data for p, (_, data) in self.tree(resolved).items()}

    def newer_tags(self, than: str) -> list[str]:
        """Release tags (no pre-releases) with a higher version than `than`."""
        base = Version.parse(than)
        if base is None:
            return []
        out = []
        for tag in self.tags():
            v = Version.parse(tag)
            if v is not None and v.pre is None and v.sort_key() > base.sort_key():
                out.append(tag)
        return out


# -- git -----------------------------------------------------------------------------------
class GitSource(Source):
    kind = "git"

    def __init__(self, spec: str, *, local: Path | None = None) -> None:
        super().__init__(spec)
        self._local = local
        self._repo: git.Repo | None = None

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            try:
                if self._local is not None:
                    self._repo = git.open_repo(self._local, search=False)
                else:
                    key = hashlib.sha256(self.spec.encode()).hexdigest()[:16]
                    self._repo = untrusted.fetch_mirror(
                        self.spec, cache_dir() / "sources" / f"{key}.git",
                        f"the git source {self.spec}")
            except GitError as e:
                raise SourceError(
                    f"cannot read the git source {self.spec}: {e.message}.",
                    hint="Check the URL or path, your network and credentials, then run the "
                    "command again.",
                ) from e
        return self._repo

    def tags(self) -> list[str]:
        return sort_tags(self.repo.tags())

    def branches(self) -> list[str]:
        return sorted(self.repo.branches())

    def _lookup_commit(self, ref: str) -> str | None:
        if not _HEX.match(ref):
            return None
        try:
            return self.repo.resolve(ref)
        except GitError:
            return None

    def _resolved(self, requested: str, name: str, how: str) -> ResolvedRef:
        if how == "tag":
            commit = self.repo.tags()[name]
        elif how == "branch":
            commit = self.repo.branches()[name]
        else:
            commit = name
        return ResolvedRef(requested=requested, name=name, how=how, commit=commit)

    def tree(self, resolved: ResolvedRef) -> git.Files:
        if resolved.commit is None:
            raise SourceError(f"{resolved.name} has no commit in {self.spec}")
        try:
            return untrusted.read_git_tree(self.repo, resolved.commit,
                                           f"the release {resolved.name} of {self.spec}")
        except GitError as e:
            raise SourceError(f"cannot read {resolved.name} from {self.spec}: {e.message}") from e


# -- archives ------------------------------------------------------------------------------
def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_tag(filename: str) -> str | None:
    """'kubeflow-manifests-v1.4.0.tar.gz' -> 'v1.4.0'; None when the name has no tag."""
    lower = filename.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            stem = filename[: -len(suffix)]
            break
    else:
        return None
    m = _ARCHIVE_TAG.match(stem)
    if m:
        return m.group(1)
    head, sep, tail = stem.rpartition("-")
    return tail if sep and head and tail else None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_name(name: str, archive: Path) -> str | None:
    p = PurePosixPath(name.replace("\\", "/"))
    parts = [x for x in p.parts if x not in ("", ".")]
    if not parts:
        return None
    if p.is_absolute() or ".." in parts:
        raise SourceError(f"{archive} holds an unsafe path {name!r}.",
                          hint="Only archives with relative paths inside them can be vendored.")
    if ".git" in parts:
        return None
    return "/".join(parts)


def _strip_top(files: git.Files) -> git.Files:
    tops = {p.split("/", 1)[0] for p in files}
    if len(tops) == 1 and all("/" in p for p in files):
        return {p.split("/", 1)[1]: v for p, v in files.items()}
    return files


def read_archive(path: Path) -> git.Files:
    """A release archive's files, with a single top-level folder stripped. Untrusted
    content is refused (gitops.untrusted): special files, hard links to anything but an
    earlier member, links leading outside the release, files and trees above the limits."""
    where = f"the archive {path}"
    budget = untrusted.Budget(untrusted.Limits.from_env(), where)
    out: git.Files = {}
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    name = _safe_name(info.filename, path)
                    if name is None:
                        continue
                    out[name] = untrusted.zip_member(zf, info, name, budget)
        else:
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    if member.isdir():
                        continue
                    name = _safe_name(member.name, path)
                    if name is None:
                        continue
                    out[name] = untrusted.tar_member(tf, member, name, out, budget)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise SourceError(f"cannot read the archive {path}: {e}.",
                          hint="Check that the file is a complete .tar.gz or .zip.") from e
    files = _strip_top(out)
    untrusted.check_links(files, where)
    return files


class ArchiveSource(Source):
    """One archive: one release. Its tag comes from the file name when it carries one
    (kubeflow-manifests-v1.4.0.tar.gz); an archive without a tag in its name accepts any
    ref as the release's label."""

    kind = "archive"

    def __init__(self, spec: str, path: Path) -> None:
        super().__init__(spec)
        self.path = path
        self.tag = archive_tag(path.name)

    def tags(self) -> list[str]:
        return [self.tag] if self.tag else []

    def resolve(self, ref: str) -> ResolvedRef:
        if self.tag is None and ref.strip():
            return self._resolved(ref, ref.strip(), "release")
        return super().resolve(ref)

    def _resolved(self, requested: str, name: str, how: str) -> ResolvedRef:
        return ResolvedRef(requested=requested, name=name, how=how, location=str(self.path),
                           archive_sha256=file_sha256(self.path))

    def tree(self, resolved: ResolvedRef) -> git.Files:
        return read_archive(self.path)


class ArchiveFolderSource(Source):
    kind = "archive-folder"

    def __init__(self, spec: str, path: Path) -> None:
        super().__init__(spec)
        self.path = path
        self.archives: dict[str, Path] = {}
        for p in sorted(path.iterdir()):
            if p.is_file() and is_archive_name(p.name):
                tag = archive_tag(p.name)
                if tag is not None:
                    self.archives.setdefault(tag, p)

    def tags(self) -> list[str]:
        return sort_tags(self.archives)

    def _resolved(self, requested: str, name: str, how: str) -> ResolvedRef:
        archive = self.archives[name]
        return ResolvedRef(requested=requested, name=name, how=how, location=str(archive),
                           archive_sha256=file_sha256(archive))

    def tree(self, resolved: ResolvedRef) -> git.Files:
        return read_archive(self.archives[resolved.name])


class ReleaseFolderSource(Source):
    kind = "release-folder"

    def __init__(self, spec: str, path: Path) -> None:
        super().__init__(spec)
        self.path = path
        self.releases = {p.name: p for p in path.iterdir()
                         if p.is_dir() and not p.name.startswith(".")}

    def tags(self) -> list[str]:
        return sort_tags(self.releases)

    def _resolved(self, requested: str, name: str, how: str) -> ResolvedRef:
        return ResolvedRef(requested=requested, name=name, how=how,
                           location=str(self.releases[name]))

    def tree(self, resolved: ResolvedRef) -> git.Files:
        try:
            return untrusted.read_folder(self.releases[resolved.name],
                                         f"the release folder {resolved.location}")
        except OSError as e:
            raise SourceError(f"cannot read the release folder {resolved.location}: {e}") from e


# -- detection -----------------------------------------------------------------------------
def is_url(spec: str) -> bool:
    return "://" in spec or bool(re.match(r"^[\w.-]+@[\w.-]+:", spec))


def _open(spec: str) -> Source:
    if is_url(spec):
        return GitSource(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(
            f"the source {spec} does not exist.",
            hint="Give a git URL, a local git repository, a .tar.gz/.zip archive, or a folder "
            "of release archives or release folders.",
        )
    if path.is_file():
        if is_archive_name(path.name):
            return ArchiveSource(spec, path)
        raise SourceError(f"the source {spec} is a file but not a .tar.gz, .tgz or .zip archive")
    if git.is_repo_dir(path):
        return GitSource(spec, local=path)
    try:
        entries = list(path.iterdir())
    except OSError as e:
        raise SourceError(f"cannot read the source folder {spec}: {e.strerror}") from e
    if any(p.is_file() and is_archive_name(p.name) and archive_tag(p.name) for p in entries):
        return ArchiveFolderSource(spec, path)
    if any(p.is_dir() and not p.name.startswith(".") for p in entries):
        return ReleaseFolderSource(spec, path)
    raise SourceError(
        f"the source folder {spec} holds no releases.",
        hint="A folder source holds archives named <name>-<tag>.tar.gz (or .tgz, .zip) or one "
        "subfolder per release tag.",
    )


def open_source(spec: str) -> Source:
    """The source a string names. Git remotes are fetched lazily, on first use."""
    return _open(spec)



def spec_for_stack(source: str, *, root: Path, cwd: Path) -> str:
    """A source given on the command line (relative to `cwd`) as stack.yaml and the lock
    hold it: URLs as given; local paths relative to the stack root when inside it,
    absolute otherwise."""
    if is_url(source):
        return source
    path = (cwd / Path(source).expanduser()).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
