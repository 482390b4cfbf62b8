"""The render cache never serves a stale render: one input file changed in every way a user
can change it (committed, staged, unstaged, untracked, ignored, behind an index flag, in the
same clock tick as the index, through a link), in and outside git, in two worktrees sharing
the cache. Each check compares the cached path with a render that bypasses the cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest

from gitops import gitindex, renderkey
from gitops.errors import KustomizeError
from gitops.render import Rendered, render_clusters, render_path, write_rendered
from tests.fixtures.gitrepos import commit_all, write_files

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{v}\"\n"
FILES = {
    "stack.yaml": "name: mlstack\nsource: ./upstream\n",
    ".gitignore": "*.local\n",
    "base/kustomization.yaml": (
        "resources: [cm.yaml]\n"
        "configMapGenerator:\n- name: gen\n  files: [data.txt]\n"),
    "base/cm.yaml": CM.format(name="cm", v="1"),
    "base/data.txt": "one\n",
    "clusters/dev/kustomization.yaml": "resources: [../../base]\nnamespace: dev\n",
}

git_cli = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


@pytest.fixture
def repo(tmp_path: Path, kustomize: Path, git_env: Path) -> Path:
    root = tmp_path / "deploy"
    write_files(root, FILES)
    g = pygit2.init_repository(str(root), initial_head="main")
    commit_all(g, "initial")
    return root


def render(root: Path, cluster: str = "dev") -> Rendered:
    """The cached render, checked against a fresh one: the invariant of this file."""
    cached = render_path(root / "clusters" / cluster, name=cluster, base=root)
    fresh = render_path(root / "clusters" / cluster, name=cluster, base=root,
                        use_cache=False)
    assert cached.text == fresh.text, "the cache served a stale render"
    assert cached.key == fresh.key
    return cached


def value(r: Rendered, name: str = "cm") -> str:
    obj = next(o for o in r.objects if o.id.kind == "ConfigMap" and o.id.name == name)
    return str(obj.body["data"]["v"])


def gen(r: Rendered) -> dict[str, str]:
    obj = next(o for o in r.objects if o.id.name.startswith("gen-"))
    return dict(obj.body["data"])


def test_a_committed_change_is_rendered_and_going_back_is_served_from_the_cache(
        repo: Path) -> None:
    g = pygit2.Repository(str(repo))
    first = render(repo)
    assert render(repo).cache_hit and value(first) == "1"
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="2")})
    commit_all(g, "v2")
    second = render(repo)
    assert not second.cache_hit and value(second) == "2"
    assert second.source == str(g.head.target)
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="1")})  # back, uncommitted
    back = render(repo)
    assert back.cache_hit and back.text.split("---", 1)[1] == first.text.split("---", 1)[1]
    assert back.source == f"{g.head.target}+changes"


def test_a_staged_change_is_rendered(repo: Path) -> None:
    render(repo)
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="3")})
    g = pygit2.Repository(str(repo))
    g.index.add("base/cm.yaml")
    g.index.write()
    r = render(repo)
    assert not r.cache_hit and value(r) == "3"
    assert r.source is not None and r.source.endswith("+changes")


def test_an_unstaged_change_of_the_same_size_is_rendered(repo: Path) -> None:
    render(repo)
    write_files(repo, {"base/data.txt": "two\n"})  # same size, same second
    r = render(repo)
    assert not r.cache_hit and gen(r)["data.txt"] == "two\n"


def test_an_untracked_input_and_an_ignored_input_are_rendered(repo: Path) -> None:
    write_files(repo, {"base/extra.local": "ignored by git, read by kustomize\n",
                       "base/kustomization.yaml": FILES["base/kustomization.yaml"].replace(
                           "[data.txt]", "[data.txt, extra.local]")})
    render(repo)
    write_files(repo, {"base/extra.local": "changed, still ignored\n"})
    assert pygit2.Repository(str(repo)).path_is_ignored("base/extra.local")
    r = render(repo)
    assert not r.cache_hit and gen(r)["extra.local"] == "changed, still ignored\n"
    # A new untracked file that a kustomization now reads.
    write_files(repo, {"base/new.yaml": CM.format(name="new", v="n"),
                       "base/kustomization.yaml": FILES["base/kustomization.yaml"].replace(
                           "[cm.yaml]", "[cm.yaml, new.yaml]").replace(
                           "[data.txt]", "[data.txt, extra.local]")})
    r = render(repo)
    assert value(r, "new") == "n"
    write_files(repo, {"base/new.yaml": CM.format(name="new", v="m")})
    assert value(render(repo), "new") == "m"


def test_a_file_changed_in_the_clock_tick_of_the_index_is_hashed(repo: Path) -> None:
    render(repo)
    g = pygit2.Repository(str(repo))
    # Write, stage and rewrite (same size) at once: file times are coarse, so the stat
    # data often still equals the index entry's. The racy-git rule catches it.
    write_files(repo, {"base/data.txt": "aaa\n"})
    g.index.add("base/data.txt")
    g.index.write()
    write_files(repo, {"base/data.txt": "bbb\n"})
    r = render(repo)
    assert gen(r)["data.txt"] == "bbb\n"


def test_an_index_entry_whose_stat_data_matches_but_is_not_older_than_the_index_is_not_trusted(
        ) -> None:
    def stat(ino: int) -> os.stat_result:  # mode, ino, dev, nlink, uid, gid, size, times
        return os.stat_result((0o100644, ino, 0, 1, 0, 0, 4, 0, 0, 0, 0.0, 0.0, 0.0,
                               0, 5_000, 5_000))

    st = stat(7)
    entry = {"f": (5_000, 5_000, 7, 4, "a" * 40)}
    assert gitindex.Index(entries=entry, written_ns=5_001, oid_size=20).blob_id("f", st) \
        == "a" * 40
    assert gitindex.Index(entries=entry, written_ns=5_000, oid_size=20).blob_id("f", st) \
        is None  # written in the same tick: racy
    assert gitindex.Index(entries=entry, written_ns=9_000, oid_size=20).blob_id("f", stat(8)) \
        is None  # another inode: another file


@git_cli
@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_a_change_behind_an_index_flag_is_rendered(repo: Path, flag: str) -> None:
    render(repo)
    subprocess.run(["git", "update-index", flag, "base/cm.yaml"], cwd=repo, check=True)
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="9")})
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout
    assert "cm.yaml" not in status  # git itself does not see the change
    r = render(repo)
    assert not r.cache_hit and value(r) == "9"


def test_a_change_through_a_symlink_is_rendered_and_retargeting_it_is_a_change(
        repo: Path) -> None:
    for name in ("one", "two"):  # two folders with the same content
        write_files(repo, {f"shared/{name}/kustomization.yaml": "resources: [cm.yaml]\n",
                           f"shared/{name}/cm.yaml": CM.format(name="linked", v="a")})
    (repo / "base/linked").symlink_to("../shared/one")
    write_files(repo, {"base/kustomization.yaml": FILES["base/kustomization.yaml"].replace(
        "[cm.yaml]", "[cm.yaml, linked]")})
    commit_all(pygit2.Repository(str(repo)), "a link")
    first = render(repo)
    assert value(first, "linked") == "a" and render(repo).cache_hit
    write_files(repo, {"shared/one/cm.yaml": CM.format(name="linked", v="b")})
    assert value(render(repo), "linked") == "b"
    write_files(repo, {"shared/one/cm.yaml": CM.format(name="linked", v="a")})
    (repo / "base/linked").unlink()
    (repo / "base/linked").symlink_to("../shared/two")  # the same content as before
    retargeted = render(repo)
    assert value(retargeted, "linked") == "a" and retargeted.key != first.key


def test_outside_git_every_change_is_rendered(tmp_path: Path, kustomize: Path) -> None:
    root = tmp_path / "plain"
    write_files(root, FILES)
    render(root)
    assert render(root).cache_hit and render(root).source is None
    write_files(root, {"base/cm.yaml": CM.format(name="cm", v="5")})
    assert value(render(root)) == "5"


def test_a_file_outside_the_repository_is_refused_and_a_folder_outside_is_followed(
        repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_files(outside, {"data.txt": "from outside\n",
                          "kustomization.yaml": "resources: [cm.yaml]\n",
                          "cm.yaml": CM.format(name="far", v="x")})
    rel = os.path.relpath(outside, repo / "clusters/dev")
    write_files(repo, {"clusters/dev/kustomization.yaml": (
        f"resources: [../../base]\nconfigMapGenerator:\n- name: far\n"
        f"  files: [{rel}/data.txt]\n")})
    with pytest.raises(KustomizeError, match=r"security|not in or below"):
        render_path(repo / "clusters/dev", name="dev", base=repo)
    write_files(repo, {"clusters/dev/kustomization.yaml": f"resources: [../../base, {rel}]\n"})
    assert value(render(repo), "far") == "x"
    write_files(outside, {"cm.yaml": CM.format(name="far", v="y")})
    r = render(repo)
    assert value(r, "far") == "y" and r.source is not None and r.source.endswith("+changes")


def test_worktrees_share_the_cache_and_each_renders_its_own_changes(
        repo: Path, tmp_path: Path) -> None:
    g = pygit2.Repository(str(repo))
    g.branches.local.create("other", g.head.peel(pygit2.Commit))
    other = tmp_path / "other"
    g.add_worktree("other", str(other), g.branches.local["other"])
    first = render(repo)
    there = render(other)
    assert there.cache_hit and there.key == first.key  # committed content: git's ids
    write_files(other, {"base/cm.yaml": CM.format(name="cm", v="w")})
    assert value(render(other)) == "w" and value(render(repo)) == "1"
    assert gitindex.find_git_dir(other / "base") is not None


def test_a_render_at_a_commit_uses_the_commits_content_and_shares_the_cache(
        repo: Path) -> None:
    from gitops.stack import Stack

    g = pygit2.Repository(str(repo))
    old = str(g.head.target)
    render(repo)
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="c")})
    commit_all(g, "v c")
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="d")})  # uncommitted
    stack = Stack(root=repo, name="mlstack", source="./upstream")
    at_old = render_clusters(stack, ["dev"], ref=old)["dev"]
    assert at_old.cache_hit and value(at_old) == "1" and at_old.source == old
    at_head = render_clusters(stack, ["dev"], ref="HEAD")["dev"]
    assert not at_head.cache_hit and value(at_head) == "c"
    assert render_clusters(stack, ["dev"], ref="HEAD")["dev"].cache_hit
    assert value(render(repo)) == "d"


def test_content_filters_make_the_key_hash_content(repo: Path) -> None:
    assert renderkey.WorktreeInputs(repo).index is not None
    cfg = pygit2.Repository(str(repo)).config
    cfg["core.autocrlf"] = "true"
    assert renderkey.WorktreeInputs(repo).index is None
    del cfg["core.autocrlf"]
    write_files(repo, {".gitattributes": "*.txt text eol=crlf\n"})
    commit_all(pygit2.Repository(str(repo)), "attributes")
    assert renderkey.WorktreeInputs(repo).index is None


def test_another_kustomize_binary_of_the_same_version_is_another_key(
        repo: Path, kustomize: Path, tmp_path: Path) -> None:
    first = render(repo)
    patched = tmp_path / "bin" / "kustomize"
    patched.parent.mkdir()
    shutil.copy2(kustomize, patched)
    with patched.open("ab") as f:
        f.write(b"\0")  # another build: same version, other bytes
    r = render_path(repo / "clusters/dev", name="dev", kustomize=patched)
    assert r.kustomize_version == first.kustomize_version
    assert not r.cache_hit and r.key != first.key


def test_an_output_file_that_is_already_the_render_is_not_written_again(
        repo: Path, tmp_path: Path) -> None:
    r = render(repo)
    (target,) = write_rendered(r, tmp_path / "out")
    before = target.stat()
    write_rendered(render(repo), tmp_path / "out")
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    split = write_rendered(r, tmp_path / "split", split=True)
    stamps = [p.stat().st_mtime_ns for p in split]
    assert [p.stat().st_mtime_ns for p in write_rendered(r, tmp_path / "split", split=True)] \
        == stamps


def test_a_plan_from_render_texts_equals_the_plan_from_parsed_objects(repo: Path) -> None:
    from gitops.plan import RefInfo, plan_from_renders
    from gitops.plan.model import plan_from_rendered
    from gitops.redact import Redactor
    from gitops.stack import Stack

    crd = ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
           "  name: widgets.ml.example.com\n  annotations:\n    note: token-1234567890\n"
           "spec:\n  group: ml.example.com\n  names:\n    kind: Widget\n    plural: widgets\n"
           "  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n"
           "    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n")
    secret = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n"
              "  password: s3cret-value-123\n")
    write_files(repo, {"base/crd.yaml": crd, "base/secret.yaml": secret,
                       "clusters/prod/kustomization.yaml": "resources: [../../base]\n",
                       "base/kustomization.yaml": FILES["base/kustomization.yaml"].replace(
                           "[cm.yaml]", "[cm.yaml, crd.yaml, secret.yaml]")})
    g = pygit2.Repository(str(repo))
    base = commit_all(g, "crd and secret")
    write_files(repo, {"base/cm.yaml": CM.format(name="cm", v="s3cret-value-123"),
                       "clusters/dev/kustomization.yaml": "resources: [../../base]\n"})
    head = commit_all(g, "dev changes")
    stack = Stack(root=repo, name="mlstack", source="./upstream")
    before = render_clusters(stack, ["dev", "prod"], ref=base)
    after = render_clusters(stack, ["dev", "prod"], ref=head)
    refs = {"base": RefInfo("base", base), "head": RefInfo("head", head)}
    fast = plan_from_rendered(before, after, redactor=Redactor(salt=b"t"), **refs)
    slow = plan_from_renders({n: r.bodies() for n, r in before.items()},
                             {n: r.bodies() for n, r in after.items()},
                             redactor=Redactor(salt=b"t"), **refs)
    assert fast.clusters == slow.clusters
    assert [c.status for c in fast.clusters] == ["changed", "changed"]
    assert fast.redactor.known_values == slow.redactor.known_values
    assert fast.redactor._public == slow.redactor._public  # names never scrubbed
    assert "s3cret-value-123" in fast.redactor.known_values
