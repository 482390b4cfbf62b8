"""Untrusted upstream content (issue 12, item 9): links, special files and sizes in a release,
from every source kind, and links met by the render walk.

An import refuses a link that leaves the release's tree (absolute, `..` past its top, or
through another link), a tar hard link to anything but an earlier member, device files and
FIFOs, and files or trees above the size limits; it writes nothing outside vendor/ (and the
lock its merge commits). A render never reads through a link that leaves the repository.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from tests.fixtures.gitrepos import AUTHOR, commit_all, repo_status, write_files
from tests.test_remote_fetch import http_root as http_root  # a fixture

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: '1'\n"
BASE = {"base/kustomization.yaml": KUST + "resources:\n- cm.yaml\n", "base/cm.yaml": CM}
KINDS = ("git", "tar.gz", "zip", "folder")

# (kind, path, target): "link" a symbolic link, "hard" a tar hard link, "fifo", "chr" a
# character device, "file" a regular file of `target` bytes.
Entry = tuple[str, str, "str | bytes"]


# ------------------------------------------------------------------------------ sources


def _git(dest: Path, entries: Iterable[Entry]) -> Path:
    work = dest / "up"
    repo = pygit2.init_repository(str(work), initial_head="main")
    write_files(work, BASE)
    for kind, path, target in entries:
        p = work / path
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "link":
            p.symlink_to(str(target))
        elif kind == "file":
            p.write_bytes(target if isinstance(target, bytes) else target.encode())
        else:
            raise AssertionError(f"git holds no {kind}")
    commit = commit_all(repo, "release")
    repo.create_tag("v1.0.0", pygit2.Oid(hex=commit), pygit2.enums.ObjectType.COMMIT, AUTHOR,
                    "release")
    return work


def _tar(dest: Path, entries: Iterable[Entry]) -> Path:
    path = dest / "up-v1.0.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for rel, text in BASE.items():
            _tar_add(tf, f"up/{rel}", tarfile.REGTYPE, data=text.encode())
        for kind, rel, target in entries:
            name = f"up/{rel}"
            if kind == "link":
                _tar_add(tf, name, tarfile.SYMTYPE, link=str(target))
            elif kind == "hard":
                _tar_add(tf, name, tarfile.LNKTYPE, link=str(target))
            elif kind == "fifo":
                _tar_add(tf, name, tarfile.FIFOTYPE)
            elif kind == "chr":
                _tar_add(tf, name, tarfile.CHRTYPE)
            else:
                data = target if isinstance(target, bytes) else target.encode()
                _tar_add(tf, name, tarfile.REGTYPE, data=data)
    return path


def _tar_add(tf: tarfile.TarFile, name: str, kind: bytes, *, data: bytes = b"",
             link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    info.mtime = 1_700_000_000
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 5  # /dev/zero's numbers
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data) if data else None)


def _zip(dest: Path, entries: Iterable[Entry]) -> Path:
    path = dest / "up-v1.0.0.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in BASE.items():
            _zip_add(zf, f"up/{rel}", stat.S_IFREG | 0o644, text.encode())
        for kind, rel, target in entries:
            data = target if isinstance(target, bytes) else str(target).encode()
            mode = {"link": stat.S_IFLNK | 0o777, "fifo": stat.S_IFIFO | 0o644,
                    "chr": stat.S_IFCHR | 0o644, "file": stat.S_IFREG | 0o644}[kind]
            _zip_add(zf, f"up/{rel}", mode, data if kind in ("link", "file") else b"")
    return path


def _zip_add(zf: zipfile.ZipFile, name: str, mode: int, data: bytes) -> None:
    info = zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20))
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def _folder(dest: Path, entries: Iterable[Entry]) -> Path:
    rel_root = dest / "releases"
    top = rel_root / "v1.0.0"
    write_files(top, BASE)
    for kind, path, target in entries:
        p = top / path
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "link":
            p.symlink_to(str(target))
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "chr":
            try:
                os.mknod(p, stat.S_IFCHR | 0o644, os.makedev(1, 5))
            except PermissionError:
                pytest.skip("creating a device file needs CAP_MKNOD")
        elif kind == "file":
            p.write_bytes(target if isinstance(target, bytes) else str(target).encode())
        else:
            raise AssertionError(f"a folder holds no {kind}")
    return rel_root


MAKERS: dict[str, Callable[[Path, Iterable[Entry]], Path]] = {
    "git": _git, "tar.gz": _tar, "zip": _zip, "folder": _folder}


@pytest.fixture
def importer(tmp_path: Path, deploy_repo: Callable[..., Path],
             monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, Path]]:
    """importer(kind, entries) -> (exit code, stderr as one line, repo root) of
    `stackctl vendor import --ref v1.0.0` from a release of that kind holding BASE and
    `entries`; also checks that nothing was written outside vendor/ and the lock."""

    def run(kind: str, entries: list[Entry]) -> tuple[int, str, Path]:
        (tmp_path / "src").mkdir(exist_ok=True)
        src = MAKERS[kind](tmp_path / "src", entries)
        outside = tmp_path / "outside"
        outside.mkdir(exist_ok=True)
        (outside / "secret.yaml").write_text(CM.replace("app", "stolen"))
        root = deploy_repo(source=str(src))
        monkeypatch.chdir(root)
        before = _files(tmp_path, root)
        with _memory_cap():
            code = main(["vendor", "import", "--ref", "v1.0.0"])
        err = " ".join(capsys.readouterr().err.split())
        assert "Traceback" not in err
        assert _files(tmp_path, root) == before, "a file was written outside vendor/"
        return code, err, root

    return run


@contextlib.contextmanager
def _memory_cap(extra: int = 1 << 30) -> Iterator[None]:
    """At most `extra` more bytes of address space for this process while the block runs:
    a reader that follows a link to /dev/zero (or a device file) fails with MemoryError
    instead of taking the machine's memory (the soft limit is raised back after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(next(ln.split()[1] for ln in Path("/proc/self/status").read_text().splitlines()
                    if ln.startswith("VmSize:"))) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _files(tmp_path: Path, root: Path) -> dict[str, tuple[int, int]]:
    """Every file below tmp_path except the repository's vendor/, .git and lock."""
    skip = {root / "vendor", root / ".git"}
    out = {}
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if d / n not in skip]
        for n in filenames:
            p = d / n
            if p == root / "stackctl.lock":
                continue
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _refused(code: int, err: str, root: Path, *words: str) -> None:
    assert code == 2, err
    for w in words:
        assert w in err, err
    repo = pygit2.Repository(str(root))
    assert "vendor/mlstack" not in repo.branches.local, "the refused release was committed"
    assert not repo_status(root)


# ------------------------------------------------------------------------------- links


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_to_a_device_is_refused_from_every_source_kind(
    kind: str, importer: Callable[..., tuple[int, str, Path]]
) -> None:
    code, err, root = importer(kind, [("link", "base/zero", "/dev/zero")])
    _refused(code, err, root, "base/zero", "/dev/zero", "outside the release")


@pytest.mark.parametrize("kind", KINDS)
def test_a_relative_link_out_of_the_release_is_refused_from_every_source_kind(
    kind: str, importer: Callable[..., tuple[int, str, Path]]
) -> None:
    code, err, root = importer(kind, [("link", "base/up", "../../../../outside")])
    _refused(code, err, root, "base/up", "../../../../outside", "outside the release")


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_that_leaves_the_release_through_another_link_is_refused(
    kind: str, importer: Callable[..., tuple[int, str, Path]]
) -> None:
    # Each target alone stays inside (w/y is the release's top, x is w): only following
    # w/y first shows that x's `..` climbs above the top.
    code, err, root = importer(kind, [("link", "w/y", ".."), ("link", "x", "w/y/..")])
    _refused(code, err, root, "x", "outside the release")


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_inside_the_release_is_kept_as_a_link(
    kind: str, importer: Callable[..., tuple[int, str, Path]]
) -> None:
    code, err, root = importer(kind, [("link", "alias/cm.yaml", "../base/cm.yaml")])
    assert code == 0, err
    link = root / "vendor/mlstack/alias/cm.yaml"
    assert link.is_symlink() and str(link.readlink()) == "../base/cm.yaml"


def test_a_tar_hard_link_to_a_file_outside_the_archive_is_refused(
    importer: Callable[..., tuple[int, str, Path]]
) -> None:
    code, err, root = importer("tar.gz", [("hard", "base/passwd", "/etc/passwd")])
    _refused(code, err, root, "base/passwd", "/etc/passwd", "hard link")


def test_a_tar_hard_link_to_an_earlier_member_imports_its_content(
    importer: Callable[..., tuple[int, str, Path]]
) -> None:
    code, err, root = importer("tar.gz", [("hard", "copy/cm.yaml", "up/base/cm.yaml")])
    assert code == 0, err
    copy = root / "vendor/mlstack/copy/cm.yaml"
    assert not copy.is_symlink() and copy.read_text() == CM


# ------------------------------------------------------------------------ special files


@pytest.mark.timeout(60)  # today's reader blocks forever on a FIFO of a release folder
@pytest.mark.parametrize(("kind", "special"), [
    ("tar.gz", "fifo"), ("tar.gz", "chr"), ("zip", "fifo"), ("zip", "chr"),
    ("folder", "fifo"), ("folder", "chr"),
])
def test_device_files_and_fifos_are_refused(
    kind: str, special: str, importer: Callable[..., tuple[int, str, Path]]
) -> None:
    code, err, root = importer(kind, [(special, "base/dev", "")])
    _refused(code, err, root, "base/dev", "not a regular file")


# -------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_above_the_size_limit_is_refused_naming_the_limit_and_its_setting(
    kind: str, importer: Callable[..., tuple[int, str, Path]],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FILE_SIZE", "1MiB")
    code, err, root = importer(kind, [("file", "base/big.bin", b"\0" * (2 << 20))])
    _refused(code, err, root, "base/big.bin", "1 MiB", "STACKCTL_IMPORT_MAX_FILE_SIZE")


@pytest.mark.parametrize("kind", KINDS)
def test_a_release_above_the_total_size_limit_is_refused(
    kind: str, importer: Callable[..., tuple[int, str, Path]],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_SIZE", "2MiB")
    files: list[Entry] = [("file", f"data/{i}.bin", bytes([i]) * (900 << 10)) for i in range(3)]
    code, err, root = importer(kind, files)
    _refused(code, err, root, "2 MiB", "STACKCTL_IMPORT_MAX_SIZE")


def test_a_release_with_too_many_files_is_refused(
    importer: Callable[..., tuple[int, str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FILES", "10")
    files: list[Entry] = [("file", f"many/{i}.txt", "x") for i in range(12)]
    code, err, root = importer("tar.gz", files)
    _refused(code, err, root, "10 files", "STACKCTL_IMPORT_MAX_FILES")


def test_an_invalid_limit_setting_is_a_usage_error(
    importer: Callable[..., tuple[int, str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FILE_SIZE", "lots")
    code, err, root = importer("tar.gz", [])
    _refused(code, err, root, "STACKCTL_IMPORT_MAX_FILE_SIZE", "'lots'")


@pytest.mark.slow
def test_a_small_archive_holding_a_huge_file_is_refused_without_reading_it_into_memory(
    tmp_path: Path, deploy_repo: Callable[..., Path]
) -> None:
    """200 MiB of zeros compress to 200 KB: the import streams the member and stops at the
    default per-file limit (32 MiB) instead of holding the whole file (or several copies)."""
    src = tmp_path / "src"
    src.mkdir()
    archive = src / "up-v1.0.0.tar.gz"
    size = 200 << 20
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        for rel, text in BASE.items():
            _tar_add(tf, f"up/{rel}", tarfile.REGTYPE, data=text.encode())
        info = tarfile.TarInfo("up/base/huge.bin")
        info.size = size
        tf.addfile(info, _Zeros(size))
    assert archive.stat().st_size < 2 << 20
    root = deploy_repo(source=str(archive))
    # VmHWM: the peak RSS of this program's memory (ru_maxrss would count the pytest
    # process it was forked from, as Linux keeps it across execve).
    probe = ("import sys\nfrom pathlib import Path\nfrom gitops.cli import main\n"
             "code = main(['vendor', 'import', '--ref', 'v1.0.0'])\n"
             "print(next(ln.split()[1] for ln in Path('/proc/self/status').read_text()"
             ".splitlines() if ln.startswith('VmHWM:')))\nsys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "base/huge.bin" in proc.stderr and "32 MiB" in " ".join(proc.stderr.split())
    max_rss_mib = int(proc.stdout.strip()) / 1024  # Linux reports KiB
    assert max_rss_mib < 150, f"the import peaked at {max_rss_mib:.0f} MiB"


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


# ---------------------------------------------------------------------------- the render


def _render_repo(tmp_path: Path, deploy_repo: Callable[..., Path]) -> Path:
    root = deploy_repo(source=".")
    write_files(root, {"clusters/dev/kustomization.yaml": KUST + "resources:\n- ../../overlays\n",
                       "overlays/kustomization.yaml": KUST + "resources:\n- cm.yaml\n",
                       "overlays/cm.yaml": CM})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(CM.replace("app", "stolen"))
    return root


def test_render_refuses_a_link_out_of_the_repository(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _render_repo(tmp_path, deploy_repo)
    (root / "overlays/leak").symlink_to(tmp_path / "outside")
    monkeypatch.chdir(root)
    code = main(["render", "--cluster", "dev", "--out", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "overlays/leak" in err and "outside the repository" in err


def test_render_of_a_commit_refuses_a_committed_link_out_of_the_repository(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _render_repo(tmp_path, deploy_repo)
    (root / "overlays/leak").symlink_to(tmp_path / "outside")
    commit_all(pygit2.Repository(str(root)), "a link out of the repository")
    (root / "overlays/leak").unlink()  # the working tree no longer has it; the commit does
    monkeypatch.chdir(root)
    code = main(["render", "--cluster", "dev", "--ref", "HEAD", "--out", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "overlays/leak" in err and "outside the repository" in err


def test_render_follows_a_link_that_stays_in_the_repository(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _render_repo(tmp_path, deploy_repo)
    # kustomize itself refuses a file whose real path is outside the kustomization's folder.
    (root / "overlays/real").mkdir()
    (root / "overlays/real/other.yaml").write_text(CM.replace("app", "other"))
    (root / "overlays/kustomization.yaml").write_text(
        KUST + "resources:\n- cm.yaml\n- linked/other.yaml\n")
    (root / "overlays/linked").symlink_to("real")
    monkeypatch.chdir(root)
    code = main(["render", "--cluster", "dev", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "name: other" in (tmp_path / "out/dev.yaml").read_text()


def _limited_render(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`stackctl render` in a process that may map at most 1 GiB: today's walk reads a link
    to /dev/zero until it runs out of memory, which must not take the machine with it."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "gitops", "render", "--cluster", "dev", "--out",
         str(tmp_path / "out")], cwd=root, capture_output=True, text=True, check=False,
        preexec_fn=limit, timeout=120)


def test_render_refuses_a_link_to_a_device_instead_of_reading_it(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path
) -> None:
    root = _render_repo(tmp_path, deploy_repo)
    (root / "overlays/zero").symlink_to("/dev/zero")
    proc = _limited_render(root, tmp_path)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, err
    assert "overlays/zero" in err and "/dev/zero" in err


@pytest.mark.timeout(120)  # today's walk blocks forever reading a FIFO
def test_render_refuses_a_fifo_among_its_inputs(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path
) -> None:
    root = _render_repo(tmp_path, deploy_repo)
    os.mkfifo(root / "overlays/pipe")
    proc = _limited_render(root, tmp_path)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, err
    assert "overlays/pipe" in err and "not a regular file" in err


# -------------------------------------------------------------------------- remote bases


def test_a_remote_base_holding_a_link_out_of_the_release_is_refused(
    tmp_path: Path, git_env: Path
) -> None:
    from gitops import git
    from gitops.errors import SourceError
    from gitops.remote.vendoring import localize_release
    from gitops.stack import Stack
    from tests.fixtures.remote_mirror import tag
    from tests.test_remote_fetch import K, _fetcher, _files

    remote = tmp_path / "mirror/github.com/org/app.git"
    pygit2.init_repository(str(remote), bare=True, initial_head="main")
    # The base's folder is vendored whole, links included. Each link's target stays in the
    # remote's repository as written (l1 -> l0/.. is deploy/), but followed they climb one
    # folder each: l0 is the repository's top, l1 the folder holding it in vendor/s/_remotes/
    # ..., and l7 leads out of the release.
    files: dict[str, tuple[int, bytes]] = {
        "deploy/kustomization.yaml": (git.MODE_FILE, K + b"resources:\n- cm.yaml\n"),
        "deploy/cm.yaml": (git.MODE_FILE, CM.encode()),
        "deploy/l0": (git.MODE_LINK, b".."),
    }
    files.update({f"deploy/l{i}": (git.MODE_LINK, f"l{i - 1}/..".encode())
                  for i in range(1, 9)})
    tag(remote, "v1", files)
    release = _files({"k/kustomization.yaml": K + b"resources:\n"
                      b"- https://github.com/org/app//deploy?ref=v1\n"})
    stack = Stack(root=tmp_path / "deploy", name="s", source=".")
    with pytest.raises(SourceError, match=r"deploy/l\d -> l\d/\.\. that leads outside"):
        localize_release(stack, release, fetcher=_fetcher(tmp_path))


def test_a_remote_base_blob_above_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, git_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops.errors import SourceError
    from gitops.remote.localize import localize
    from tests.test_remote_fetch import K, _fetcher, _files, _repo

    _repo(tmp_path / "mirror/github.com/org/app.git", {"v1": {
        "deploy/kustomization.yaml": K + b"resources:\n- big.yaml\n",
        "deploy/big.yaml": b"#" * (2 << 20)}})
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FILE_SIZE", "1MiB")
    release = _files({"k/kustomization.yaml": K + b"resources:\n"
                      b"- https://github.com/org/app//deploy?ref=v1\n"})
    with pytest.raises(SourceError, match=r"deploy/big\.yaml is 2 MiB, above the limit of 1 MiB"):
        localize(release, _fetcher(tmp_path), base="vendor/s")


def test_a_remote_file_above_the_size_limit_is_refused_while_it_downloads(
    tmp_path: Path, http_root: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops.errors import SourceError
    from tests.test_remote_fetch import _fetcher

    served, base = http_root
    (served / "big.yaml").write_bytes(b"#" * (2 << 20))
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FILE_SIZE", "1MiB")
    f = _fetcher(tmp_path, **{"https://files_example_com/": base})
    with pytest.raises(SourceError, match=r"more than 1 MiB, above the limit of 1 MiB"):
        f.file("https://files.example.com/big.yaml", wanted_by="k")


def test_a_git_fetch_sending_more_than_its_limit_is_stopped_and_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops import untrusted
    from gitops.errors import SourceError

    src = tmp_path / "src"
    write_files(src, {"blob.bin": os.urandom(3 << 20)})  # incompressible: the pack is ~3 MiB
    commit_all(pygit2.init_repository(str(src), initial_head="main"), "big")
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FETCH_SIZE", "1MiB")
    with pytest.raises(SourceError) as e:
        untrusted.fetch_mirror(src.as_uri(), tmp_path / "cache" / "m.git", "the git source X")
    assert "the git source X sent more than 1 MiB and its fetch was stopped " \
           "($STACKCTL_IMPORT_MAX_FETCH_SIZE)" in str(e.value)
    assert "export STACKCTL_IMPORT_MAX_FETCH_SIZE=2MiB" in str(e.value)
    monkeypatch.setenv("STACKCTL_IMPORT_MAX_FETCH_SIZE", "8MiB")  # within the limit it works
    repo = untrusted.fetch_mirror(src.as_uri(), tmp_path / "cache" / "m.git", "X")
    assert "main" in repo.branches()
