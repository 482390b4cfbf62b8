"""Fetching remote bases through mirrors (gitops.remote.fetch) and localizing a release
(gitops.remote.localize), on real git repositories in tmp_path (pygit2), file:// folders and
a loopback HTTP server: nothing reaches the network."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from gitops import git
from gitops.errors import RemoteError
from gitops.remote.fetch import Fetcher
from gitops.remote.localize import localize
from gitops.remote.mirrors import Mirrors
from tests.fixtures.remote_mirror import tag

K = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CM = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"


def _files(spec: dict[str, bytes]) -> git.Files:
    return {p: (git.MODE_FILE, data) for p, data in spec.items()}


def _repo(path: Path, tags: dict[str, dict[str, bytes]], *, bare: bool = True
          ) -> dict[str, str]:
    pygit2.init_repository(str(path), bare=bare, initial_head="main")
    return {name: tag(path, name, _files(files)) for name, files in tags.items()}


@pytest.fixture
def gh(tmp_path: Path) -> Path:
    """A folder standing for https://github.com/ in a mirror."""
    return tmp_path / "mirror" / "github.com"


def _fetcher(tmp_path: Path, **rules: str) -> Fetcher:
    mapping = {"https://github.com/": (tmp_path / "mirror" / "github.com").as_uri() + "/"}
    mapping.update({k.replace("_", "."): v for k, v in rules.items()})
    return Fetcher(Mirrors.of(mapping), cache=tmp_path / "cache")


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A loopback HTTP server serving a folder: (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


# -- fetching -------------------------------------------------------------------------------
def test_git_mirrors_are_read_with_or_without_dot_git_at_a_tag_branch_or_commit(
    tmp_path: Path, gh: Path, git_env: Path,
) -> None:
    bare = _repo(gh / "org/bare.git", {"v1": {"a.yaml": b"1\n"}, "v2": {"a.yaml": b"2\n"}})
    plain = _repo(gh / "org/plain", {"v1": {"b.yaml": b"1\n"}}, bare=False)
    f = _fetcher(tmp_path)
    assert f.git("https://github.com/org/bare", "v1", wanted_by="k").commit == bare["v1"]
    co = f.git("https://github.com/org/plain", "v1", wanted_by="k")
    assert co.commit == plain["v1"] and co.read("b.yaml") == b"1\n"
    assert co.source.fetch == (gh / "org/plain").as_uri()
    assert f.git("https://github.com/org/bare", "main", wanted_by="k").commit == bare["v2"]
    assert f.git("https://github.com/org/bare", bare["v1"][:10],
                 wanted_by="k").commit == bare["v1"]
    assert f.git("https://github.com/org/bare", None, wanted_by="k").commit == bare["v2"]


def test_an_unreachable_git_remote_names_the_mirror_it_tried(tmp_path: Path, gh: Path,
                                                               git_env: Path) -> None:
    f = _fetcher(tmp_path, **{"https://git_corp/": "http://127.0.0.1:9/git/"})
    with pytest.raises(RemoteError) as e:
        f.git("https://github.com/org/missing", "v1", wanted_by="vendor/x/k.yaml")
    msg = str(e.value)
    assert "cannot fetch the git repository https://github.com/org/missing, which " \
           "vendor/x/k.yaml pulls" in msg
    assert (gh / "org/missing").as_uri() in msg and (gh / "org/missing.git").as_uri() in msg
    assert "the mirror https://github.com/ -> " in msg and "mirrors:" in msg
    with pytest.raises(RemoteError, match=r"http://127\.0\.0\.1:9/git/team/repo"):
        f.git("https://git.corp/team/repo", "v1", wanted_by="k")  # nothing listens there


def test_a_ref_the_mirror_lacks_is_an_error_listing_the_nearest_tags(
    tmp_path: Path, gh: Path, git_env: Path,
) -> None:
    _repo(gh / "org/repo.git", {"v3.7.2": {"a": b""}, "v3.7.3": {"a": b"x"}})
    with pytest.raises(RemoteError) as e:
        _fetcher(tmp_path).git("https://github.com/org/repo", "v3.7.4", wanted_by="k.yaml")
    msg = str(e.value)
    assert "the ref v3.7.4 of https://github.com/org/repo, which k.yaml pulls, is no tag" in msg
    assert "Nearest tags there: v3.7.2, v3.7.3." in msg and "update it" in msg


def test_files_come_from_a_file_url_or_an_http_mirror_once_each(
    tmp_path: Path, http_root: tuple[Path, str],
) -> None:
    served, base = http_root
    (served / "rel/v1").mkdir(parents=True)
    (served / "rel/v1/m.yaml").write_bytes(b"served over http\n")
    local = tmp_path / "mirror/github.com/org/r/releases/download/v1/m.yaml"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"from a folder\n")
    f = _fetcher(tmp_path, **{"https://files_example_com/": base})
    got = f.file("https://github.com/org/r/releases/download/v1/m.yaml", wanted_by="k")
    assert got.data == b"from a folder\n"
    web = f.file("https://files.example.com/rel/v1/m.yaml", wanted_by="k")
    assert web.data == b"served over http\n" and web.source.fetch == base + "rel/v1/m.yaml"
    (served / "rel/v1/m.yaml").unlink()  # fetched once: the second ask is not a download
    assert f.file("https://files.example.com/rel/v1/m.yaml", wanted_by="k") == web


def test_a_missing_or_unreachable_file_is_one_paragraph_naming_the_mirror(
    tmp_path: Path, http_root: tuple[Path, str],
) -> None:
    _, base = http_root
    f = _fetcher(tmp_path, **{"https://files_example_com/": base,
                              "https://down_example_com/": "http://127.0.0.1:9/"})
    with pytest.raises(RemoteError) as e:
        f.file("https://github.com/org/r/releases/download/v9/m.yaml", wanted_by="vendor/x/k")
    assert "the file https://github.com/org/r/releases/download/v9/m.yaml, which vendor/x/k " \
           "pulls, is not at file://" in str(e.value)
    with pytest.raises(RemoteError, match=r"was refused at http://127\.0\.0\.1:\d+/gone\.yaml "
                                          r"\(the mirror .*\): HTTP 404"):
        f.file("https://files.example.com/gone.yaml", wanted_by="k")
    with pytest.raises(RemoteError, match=r"cannot reach http://127\.0\.0\.1:9/a\.yaml"):
        f.file("https://down.example.com/a.yaml", wanted_by="k")


def test_an_upstream_url_naming_this_machine_or_climbing_out_of_the_mirror_is_refused(
    tmp_path: Path, gh: Path, git_env: Path,
) -> None:
    secret = tmp_path / "outside.yaml"
    secret.write_bytes(b"token: do-not-vendor\n")
    _repo(tmp_path / "local-repo", {"v1": {"kustomization.yaml": K}})
    f = _fetcher(tmp_path)
    with pytest.raises(RemoteError, match=r"k pulls file:///.*, a path on this machine"):
        f.file(secret.as_uri(), wanted_by="k")
    with pytest.raises(RemoteError, match=r"a path on this machine"):
        f.git((tmp_path / "local-repo").as_uri(), "v1", wanted_by="k")
    # The rest of the URL is glued onto the mirror's folder: '..' would leave it.
    (tmp_path / "mirror").mkdir(exist_ok=True)
    for url in ("https://github.com/../../outside.yaml",
                "https://github.com/org/%2e%2e/%2E%2E/%2e%2e/outside.yaml"):
        with pytest.raises(RemoteError, match=r"climbs up with '\.\.'"):
            f.file(url, wanted_by="k")
    with pytest.raises(RemoteError, match=r"climbs up"):
        f.git("https://github.com/org/../../../x", "v1", wanted_by="k")
    # A local copy the user maps explicitly is theirs to trust.
    trusted = Fetcher(Mirrors.of({secret.as_uri(): secret.as_uri()}), cache=tmp_path / "c")
    assert trusted.file(secret.as_uri(), wanted_by="k").data == b"token: do-not-vendor\n"


# -- localizing -----------------------------------------------------------------------------
def test_a_remote_base_is_vendored_with_what_it_needs_inside_its_repository(
    tmp_path: Path, gh: Path, git_env: Path,
) -> None:
    _repo(gh / "org/app.git", {"v1": {
        "LICENSE": b"license\n",
        "deploy/overlay/kustomization.yaml": K + b"resources:\n- ../base\n- ../../common/cm.yaml\n",
        "deploy/base/kustomization.yaml": K + b"resources:\n- cm.yaml\n",
        "deploy/base/cm.yaml": CM % b"base",
        "common/cm.yaml": CM % b"common",
        "docs/readme.md": b"not needed\n",
    }})
    release = _files({"k/kustomization.yaml": K + b"resources:\n"
                      b"- https://github.com/org/app//deploy/overlay?ref=v1\n"})
    out = localize(release, _fetcher(tmp_path), base="vendor/s")
    folder = "_remotes/git/github.com/org/app/v1"
    assert sorted(p for p in out.files if p.startswith(folder)) == [
        f"{folder}/LICENSE", f"{folder}/common/cm.yaml",
        f"{folder}/deploy/base/cm.yaml", f"{folder}/deploy/base/kustomization.yaml",
        f"{folder}/deploy/overlay/kustomization.yaml"]
    assert out.files["k/kustomization.yaml"][1] == K + (
        f"resources:\n- ../{folder}/deploy/overlay\n").encode()
    again = localize(release, _fetcher(tmp_path), base="vendor/s")
    assert again == out  # deterministic: the same files and pins


def test_remotes_that_pull_remotes_are_followed_up_to_the_bound(
    tmp_path: Path, gh: Path, git_env: Path,
) -> None:
    def pulls(nxt: str) -> dict[str, dict[str, bytes]]:
        return {"v1": {"kustomization.yaml": K + f"resources:\n- {nxt}\n".encode(),
                       "cm.yaml": CM % b"x"}}

    _repo(gh / "org/a.git", pulls("https://github.com/org/b?ref=v1"))
    _repo(gh / "org/b.git", pulls("https://github.com/org/c?ref=v1"))
    _repo(gh / "org/c.git", {"v1": {"kustomization.yaml": K + b"resources:\n- cm.yaml\n",
                                    "cm.yaml": CM % b"c"}})
    release = _files({"kustomization.yaml": K + b"resources:\n- github.com/org/a?ref=v1\n"})
    out = localize(release, _fetcher(tmp_path), base="vendor/s", max_depth=3)
    assert [p.url for p in out.pins] == [f"https://github.com/org/{n}" for n in "abc"]
    # b's copy inside a's points at c's copy, relative to itself
    assert out.files["_remotes/git/github.com/org/b/v1/kustomization.yaml"][1] == K + (
        b"resources:\n- ../../c/v1\n")
    assert out.pins[2].localized[0].file == "vendor/s/_remotes/git/github.com/org/b/v1/" \
                                            "kustomization.yaml"
    with pytest.raises(RemoteError, match=r"more than 2 levels deep \(vendor/s/_remotes/git/"
                                          r"github.com/org/b/v1/kustomization.yaml: "
                                          r"github.com/org/a\?ref=v1 -> "):
        localize(release, _fetcher(tmp_path), base="vendor/s", max_depth=2)


def test_a_cycle_of_remotes_is_fetched_once(tmp_path: Path, gh: Path, git_env: Path) -> None:
    _repo(gh / "org/a.git", {"v1": {
        "kustomization.yaml": K + b"resources:\n- https://github.com/org/a//sub?ref=v1\n",
        "sub/kustomization.yaml": K + b"resources:\n- cm.yaml\n", "sub/cm.yaml": CM % b"a"}})
    release = _files({"kustomization.yaml": K + b"resources:\n- github.com/org/a?ref=v1\n"})
    out = localize(release, _fetcher(tmp_path), base="v")
    assert [(p.url, len(p.localized)) for p in out.pins] == [("https://github.com/org/a", 2)]


def test_a_path_outside_the_repository_or_missing_from_it_is_refused(
    tmp_path: Path, gh: Path, git_env: Path,
) -> None:
    _repo(gh / "org/a.git", {"v1": {"base/kustomization.yaml": K + b"resources:\n- ../../x\n"}})
    escape = _files({"kustomization.yaml": K + b"resources:\n- github.com/org/a/base?ref=v1\n"})
    with pytest.raises(RemoteError, match=r"points outside the repository \(\.\./\.\./x\)"):
        localize(escape, _fetcher(tmp_path), base="v")
    missing = _files({"kustomization.yaml": K + b"resources:\n- github.com/org/a/nope?ref=v1\n"})
    with pytest.raises(RemoteError, match=r"has no nope, which v/kustomization.yaml pulls"):
        localize(missing, _fetcher(tmp_path), base="v")


def test_a_release_that_already_holds_the_remotes_folder_is_refused(tmp_path: Path) -> None:
    release = _files({"_remotes/x.yaml": b"", "kustomization.yaml": K})
    with pytest.raises(RemoteError, match=r"already holds v/_remotes/"):
        localize(release, _fetcher(tmp_path), base="v")


def test_a_release_without_remote_bases_is_left_exactly_as_it_is(tmp_path: Path) -> None:
    release = _files({"kustomization.yaml": K + b"resources:\n- github.com/x\n- ../base\n",
                      "github.com/x/kustomization.yaml": K})
    out = localize(release, _fetcher(tmp_path), base="v")
    assert out.files == release and out.pins == ()
