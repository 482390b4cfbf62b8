"""Telling remote kustomization entries apart (gitops.remote.url), the mirrors
(gitops.remote.mirrors) and rewriting an entry in a kustomization's text
(gitops.remote.refs): pure functions, no network, no git."""

from __future__ import annotations

import pytest

from gitops.errors import ConfigError
from gitops.remote.mirrors import Mirrors, load_mirrors, parse_env
from gitops.remote.pins import RemotePin, remote_changes
from gitops.remote.refs import rewrite_text
from gitops.remote.url import FileRemote, GitRemote, parse_file_url, parse_remote

GIT_FORMS = [
    # (entry, repository URL, path inside, ref)
    ("https://github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3",
     "https://github.com/argoproj/argo-workflows", "manifests/base/crds/minimal", "v3.7.3"),
    ("github.com/argoproj/argo-workflows/manifests/base?ref=v3.7.3",
     "https://github.com/argoproj/argo-workflows", "manifests/base", "v3.7.3"),
    ("https://github.com/kubernetes-sigs/lws//config/default?ref=v0.7.0",
     "https://github.com/kubernetes-sigs/lws", "config/default", "v0.7.0"),
    ("https://git.example.com/team/repo.git/deploy/base?ref=main",
     "https://git.example.com/team/repo", "deploy/base", "main"),
    ("https://git.example.com/team/repo//deploy?version=v2",
     "https://git.example.com/team/repo", "deploy", "v2"),
    ("git@github.com:org/repo.git/base?ref=v1", "git@github.com:org/repo", "base", "v1"),
    ("git@github.com:org/repo/base", "git@github.com:org/repo", "base", None),
    ("ssh://git@github.com/org/repo//base?ref=abc1234", "ssh://git@github.com/org/repo",
     "base", "abc1234"),
    ("git::https://github.com/org/repo//base?ref=v1&timeout=90s",
     "https://github.com/org/repo", "base", "v1"),
    ("file:///srv/repos/app//overlays/prod?ref=v1", "file:///srv/repos/app",
     "overlays/prod", "v1"),
    ("https://github.com/org/repo?ref=v1", "https://github.com/org/repo", "", "v1"),
    ("https://github.com/org/repo/config/default", "https://github.com/org/repo",
     "config/default", None),
]


@pytest.mark.parametrize(("entry", "repo", "path", "ref"), GIT_FORMS,
                         ids=[f[0] for f in GIT_FORMS])
def test_every_git_form_kustomize_reads_names_its_repository_path_and_ref(
    entry: str, repo: str, path: str, ref: str | None,
) -> None:
    r = parse_remote(entry)
    assert isinstance(r, GitRemote)
    assert (r.repo, r.path, r.ref, r.written) == (repo, path, ref, entry)


def test_https_urls_of_files_are_files_and_local_paths_stay_local() -> None:
    for url in ("https://github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/"
                "manifests.yaml",
                "https://raw.githubusercontent.com/org/repo/v1/deploy.yaml",
                "https://example.com/manifests/app.yaml",
                "http://mirror.local/files/crds.json"):
        assert parse_remote(url) == FileRemote(written=url, url=url)
    for local in ("../base", "deployment.yaml", "./github.com", "overlays/github.com-x"):
        assert parse_remote(local) is None
    # a folder named like a host, present beside the kustomization, is local (kustomize too)
    assert parse_remote("github.com/org/repo", local_exists=True) is None
    assert isinstance(parse_remote("github.com/org/repo"), GitRemote)
    # patches and generators read files: only http(s) URLs are remote there
    assert parse_file_url("https://example.com/p.yaml") is not None
    assert parse_file_url("github.com/org/repo/p.yaml") is None


def test_each_remote_has_a_folder_of_its_own_per_repository_and_ref() -> None:
    a = parse_remote("https://github.com/argoproj/argo-workflows/manifests/base?ref=v3.7.3")
    b = parse_remote("github.com/argoproj/argo-workflows/manifests/crds?ref=v3.7.3")
    c = parse_remote("https://github.com/argoproj/argo-workflows/manifests/base?ref=v3.7.4")
    assert isinstance(a, GitRemote) and isinstance(b, GitRemote) and isinstance(c, GitRemote)
    assert a.folder == b.folder == "git/github.com/argoproj/argo-workflows/v3.7.3"
    assert a.key == b.key != c.key
    assert c.folder == "git/github.com/argoproj/argo-workflows/v3.7.4"
    odd = parse_remote("https://github.com/org/repo//base?ref=release/1.2")
    assert isinstance(odd, GitRemote) and odd.folder == "git/github.com/org/repo/release_1.2"
    f = parse_remote("https://example.com/a/b/app.yaml?raw=1")
    assert isinstance(f, FileRemote) and f.folder == "https/example.com/a/b/app.yaml_raw_1"
    assert f.name == "app.yaml"
    secret = parse_remote("https://user:s3cret@example.com:8443/a.yaml")
    assert isinstance(secret, FileRemote) and secret.folder == "https/example.com_8443/a.yaml"


def test_mirrors_replace_the_longest_matching_prefix_for_git_and_files() -> None:
    m = Mirrors.of({"https://github.com/": "file:///srv/gh/",
                    "https://github.com/argoproj/": "https://git.corp/argo/"})
    assert m.apply("https://github.com/kubernetes-sigs/lws").fetch == \
        "file:///srv/gh/kubernetes-sigs/lws"
    assert m.apply("https://github.com/argoproj/argo-workflows").fetch == \
        "https://git.corp/argo/argo-workflows"
    assert m.apply("https://github.com/kubernetes-sigs/jobset/releases/download/v1/m.yaml"
                   ).fetch == "file:///srv/gh/kubernetes-sigs/jobset/releases/download/v1/m.yaml"
    # ssh forms match an https prefix when nothing matches them as written
    assert m.apply("git@github.com:org/repo").fetch == "file:///srv/gh/org/repo"
    unmapped = m.apply("https://gitlab.com/x/y")
    assert unmapped.fetch == "https://gitlab.com/x/y" and unmapped.prefix is None
    assert "the mirror https://github.com/ -> file:///srv/gh/" in m.apply(
        "https://github.com/a/b").describe()


def test_stackctl_mirrors_overrides_stack_yaml_per_prefix_and_is_checked() -> None:
    env = {"STACKCTL_MIRRORS": "https://github.com/=file:///ci/gh/, "
                               "https://example.com/=http://127.0.0.1:8080/ex/"}
    m = load_mirrors({"https://github.com/": "file:///srv/gh/",
                      "https://gitlab.com/": "file:///srv/gl/"}, env=env)
    assert dict(m.rules) == {"https://github.com/": "file:///ci/gh/",
                             "https://gitlab.com/": "file:///srv/gl/",
                             "https://example.com/": "http://127.0.0.1:8080/ex/"}
    assert parse_env('{"https://github.com/": "file:///x/"}') == {
        "https://github.com/": "file:///x/"}
    assert parse_env("  ") == {}
    with pytest.raises(ConfigError, match="is not PREFIX=REPLACEMENT"):
        parse_env("https://github.com/")
    with pytest.raises(ConfigError, match="ends one side with '/'"):
        parse_env("https://github.com/=file:///srv/gh")


def test_an_entry_is_rewritten_in_place_keeping_comments_quotes_and_other_lines() -> None:
    url = "https://github.com/org/repo//base?ref=v1"
    text = ("resources:\n"
            f"# - {url}   (a comment that names it stays)\n"
            f"- {url}  # upstream base\n"
            f'- "{url}"\n'
            "- local.yaml\n"
            f"components: [{url}, ../c]\n")
    out = rewrite_text(text, {url: "../_remotes/x"}, {url: 3})
    assert out == ("resources:\n"
                   f"# - {url}   (a comment that names it stays)\n"
                   "- ../_remotes/x  # upstream base\n"
                   '- "../_remotes/x"\n'
                   "- local.yaml\n"
                   "components: [../_remotes/x, ../c]\n")


def test_an_entry_the_text_spells_otherwise_is_rewritten_through_the_yaml() -> None:
    url = "https://example.com/a.yaml"
    text = 'resources:\n- "https:\\/\\/example.com/a.yaml"  # escaped slashes\nnamePrefix: x-\n'
    out = rewrite_text(text, {url: "./_remotes/https/example.com/a.yaml"}, {url: 1})
    assert '- "./_remotes/https/example.com/a.yaml"' in out and "\\/" not in out
    assert "namePrefix: x-" in out and "# escaped slashes" in out


def _pin(kind: str, url: str, ref: str | None = None, pinned: str = "a" * 40) -> RemotePin:
    return RemotePin(url=url, kind=kind, ref=ref, commit=pinned if kind == "git" else None,
                     sha256=None if kind == "git" else "b" * 64, path=None, digest=None,
                     files=0, localized=())


def test_two_locks_differ_by_remotes_added_removed_and_bumped() -> None:
    argo = "https://github.com/argoproj/argo-workflows"
    jobset = "https://github.com/kubernetes-sigs/jobset/releases/download/{}/manifests.yaml"
    before = [_pin("git", argo, "v3.7.3"), _pin("file", jobset.format("v0.6.0")),
              _pin("git", "https://github.com/old/gone", "v1")]
    after = [_pin("git", argo, "v3.7.4", "c" * 40), _pin("file", jobset.format("v0.10.1")),
             _pin("git", "https://github.com/kubernetes-sigs/lws", "v0.7.0")]
    changes = remote_changes(before, after)
    assert [(c.change, c.url, c.before, c.after) for c in changes] == [
        ("changed", argo, "v3.7.3 (aaaaaaaaaaaa)", "v3.7.4 (cccccccccccc)"),
        ("changed", jobset.format("v0.10.1"), jobset.format("v0.6.0"),
         jobset.format("v0.10.1")),
        ("added", "https://github.com/kubernetes-sigs/lws", None, "v0.7.0 (aaaaaaaaaaaa)"),
        ("removed", "https://github.com/old/gone", "v1 (aaaaaaaaaaaa)", None)]
    assert str(changes[1]) == f"{jobset.format('v0.6.0')} -> {jobset.format('v0.10.1')}"
    assert remote_changes(after, after) == ()
