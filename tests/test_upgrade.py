"""`stackctl upgrade` on a tiny upstream: every rule of the command, on real git repositories
(pygit2, tmp_path) with the real kustomize for the per-cluster report.

The upstream (a release folder) goes v1.0.0 -> v1.1.0: the web Deployment to 2 replicas and
image 1.1, params.env's LEVEL to 2, the db Secret's password changes, the folder `gw-1`
moves to `gw-2` (referenced by overlays/gw).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pygit2
import pytest

from gitops import upgrade as upgrade_api
from gitops.cli import main
from gitops.errors import DirtyWorktreeError, SourceError, UpgradeError
from gitops.lock import read_lock
from gitops.stack import load_stack
from gitops.vendor import import_release
from tests.fixtures.gitrepos import commit_all, release_folder, repo_status, write_files

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def deployment(replicas: str, image: str, extra: str = "") -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
        f"  replicas: {replicas}\n"
        "  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n"
        "      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n"
        f"        image: reg/web:{image}\n{extra}"
    )


def secret(password: str) -> str:
    return ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n"
            f"  password: {password}\n")


def release(image: str, *, replicas: str, level: str, password: str,
            gw: str) -> dict[str, str | bytes | tuple[str | bytes, int]]:
    return {
        "kustomization.yaml": KUSTOMIZATION + "resources:\n- app\n- db\n",
        "app/kustomization.yaml": KUSTOMIZATION + "resources:\n- deployment.yaml\n"
        "configMapGenerator:\n- name: web-config\n  envs:\n  - params.env\n",
        "app/deployment.yaml": deployment(replicas, image),
        "app/params.env": f"MODE=fast\nLEVEL={level}\nCOLOR=blue\nSIZE=small\nZONE=a\n",
        "db/kustomization.yaml": KUSTOMIZATION + "resources:\n- secret.yaml\n",
        "db/secret.yaml": secret(password),
        f"{gw}/kustomization.yaml": KUSTOMIZATION + "resources:\n- service.yaml\n",
        f"{gw}/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: gw\nspec:\n"
        "  selector:\n    app: gw\n  ports:\n  - port: 80\n",
    }


RELEASES = {
    "v1.0.0": release("1.0", replicas="1", level="1", password="base-secret-value", gw="gw-1"),
    "v1.1.0": release("1.1", replicas="2", level="2", password="upstream-secret-value",
                      gw="gw-2"),
}
SECRETS = ("base-secret-value", "upstream-secret-value", "local-secret-value")

CLUSTER = (KUSTOMIZATION
           + "namespace: dev\nresources:\n- ../../vendor/mlstack\n- ../../overlays/gw\n")
GATEWAY_OVERLAY = KUSTOMIZATION + "resources:\n- ../../vendor/mlstack/gw-1\n"

V = "vendor/mlstack"
BRANCH = "upgrade/mlstack-v1.1.0"
DEPLOYMENT = f"{V}/app/deployment.yaml"
PARAMS = f"{V}/app/params.env"
SECRET = f"{V}/db/secret.yaml"
REPLICAS = f"{DEPLOYMENT}:apps/Deployment//web:spec.replicas"
LEVEL = f"{PARAMS}::line 2"
PASSWORD = f"{SECRET}:/Secret//db:stringData.password"

# Local edits upstream's changes merge with cleanly.
CLEAN_EDITS = {
    DEPLOYMENT: deployment(
        "1", "1.0", "        resources:\n          limits:  # local\n            cpu: 500m\n"),
    PARAMS: "MODE=fast\nLEVEL=1\nCOLOR=blue\nSIZE=small\nZONE=b\n",
}
# Local edits that conflict with upstream's: replicas, LEVEL, the Secret's password.
CONFLICT_EDITS = {
    DEPLOYMENT: deployment("3  # local: more", "1.0"),
    PARAMS: "MODE=fast\nLEVEL=9\nCOLOR=blue\nSIZE=small\nZONE=a\n",
    SECRET: secret("local-secret-value"),
}

MARKED_DEPLOYMENT = deployment(
    "3  # local: more", "1.1").replace(
    "spec:\n  replicas",
    "spec:\n  # stackctl conflict #1 (spec.replicas): both-changed, ours 3 kept, theirs 2, "
    "base 1; see .stackctl/upgrade/report.md\n  replicas", 1)
MARKED_PARAMS = (
    "MODE=fast\n# stackctl conflict #2 (line 2): both-changed, ours LEVEL=9 kept, theirs "
    "LEVEL=2, base LEVEL=1; see .stackctl/upgrade/report.md\nLEVEL=9\nCOLOR=blue\nSIZE=small\n"
    "ZONE=a\n")


# ------------------------------------------------------------------------------ helpers


def make_repo(tmp_path: Path, deploy_repo: Callable[..., Path],
              edits: Mapping[str, str], ref: str | None = None) -> Path:
    """A deployment repo: v1.0.0 imported with stackctl, then `edits`, the overlay and the
    cluster committed on main (stack.yaml tracking `ref`, if given)."""
    release_folder(tmp_path / "rf", RELEASES)
    root = deploy_repo(source="../rf", ref=ref)
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {"overlays/gw/kustomization.yaml": GATEWAY_OVERLAY,
                       "clusters/dev/kustomization.yaml": CLUSTER, **edits})
    commit_all(pygit2.Repository(str(root)), "local customizations")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the working tree outside .git and .stackctl, with its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not {".git", ".stackctl"} & set(rel.parts):
            out[rel.as_posix()] = p.read_bytes()
    return out


def refs(root: Path) -> dict[str, str]:
    repo = pygit2.Repository(str(root))
    out = {name: str(repo.branches.local[name].target) for name in repo.branches.local}
    out["HEAD"] = repo.head.name
    return out


def head_commit(root: Path) -> pygit2.Commit:
    repo = pygit2.Repository(str(root))
    commit = repo.head.peel(pygit2.Commit)
    assert isinstance(commit, pygit2.Commit)
    return commit


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["upgrade", *args])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


@pytest.fixture
def conflicted(tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKCTL_REDACT_SALT", "fixed-salt")
    root = make_repo(tmp_path, deploy_repo, CONFLICT_EDITS)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def clean(tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
          monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path, deploy_repo, CLEAN_EDITS)
    monkeypatch.chdir(root)
    return root


# -------------------------------------------------------------------------- clean merge


def test_clean_upgrade_commits_a_merge_of_main_and_the_vendor_branch_and_checks_it_out(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_before = refs(clean)["main"]
    code, out, err = run(capsys, "--vendor", "v1.1")
    assert code == 0, err
    r = refs(clean)
    assert r["HEAD"] == f"refs/heads/{BRANCH}" and r["main"] == main_before
    commit = head_commit(clean)
    assert [str(p) for p in commit.parent_ids] == [main_before, r["vendor/mlstack"]]
    assert commit.message.startswith("Upgrade mlstack v1.0.0 -> v1.1.0\n")
    assert repo_status(clean) == {}
    lock = read_lock(clean)
    assert lock is not None
    entry = lock.get("mlstack")
    assert entry is not None
    assert (entry.ref, entry.resolved, entry.vendor_commit) == (
        "v1.1", "v1.1.0", r["vendor/mlstack"])
    # Both sides' edits, the moved folder and the rewritten reference.
    assert (clean / DEPLOYMENT).read_text() == deployment(
        "2", "1.1", "        resources:\n          limits:  # local\n            cpu: 500m\n")
    assert (clean / PARAMS).read_text() == "MODE=fast\nLEVEL=2\nCOLOR=blue\nSIZE=small\nZONE=b\n"
    assert not (clean / V / "gw-1").exists() and (clean / V / "gw-2/service.yaml").is_file()
    assert (clean / "overlays/gw/kustomization.yaml").read_text() == \
        GATEWAY_OVERLAY.replace("gw-1", "gw-2")
    assert "upgrade mlstack v1.0.0 -> v1.1.0: main -> upgrade/mlstack-v1.1.0: merged and " \
        "committed" in out
    assert "dev: changed, 4 -> 4 objects: 1 added, 1 removed, 2 changed, 1 image change(s)" \
        in out
    assert "image Deployment.apps/web -n dev [web]: reg/web 1.0 -> 1.1" in out
    assert not (clean / ".stackctl/upgrade/state.json").exists()
    data = json.loads((clean / ".stackctl/upgrade/report.json").read_text())
    assert data["outcome"] == "committed" and data["commit"] == str(commit.id)
    assert data["merge"]["summary"]["rewritten_references"] == 1
    assert data["clusters"][0]["name"] == "dev" and data["clusters"][0]["changed"] == 2


def test_upgrade_branch_name_can_be_chosen(clean: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--vendor", "v1.1.0", "--branch", "up/next")
    assert code == 0, err
    assert refs(clean)["HEAD"] == "refs/heads/up/next"


def test_dry_run_prints_the_report_and_changes_no_branch_and_no_file(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files = refs(clean), snapshot(clean)
    code, out, err = run(capsys, "--vendor", "v1.1", "--dry-run", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["outcome"], data["upgradeBranch"], data["to"]) == ("dry-run", None, "v1.1.0")
    assert refs(clean) == before  # the vendor branch too: its import commit is dropped
    assert snapshot(clean) == files and repo_status(clean) == {}
    assert json.loads((clean / ".stackctl/upgrade/report.json").read_text()) == data


def test_an_upgrade_leaves_no_loose_objects_behind(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitops import git
    from gitops.git.store import loose_objects

    repo = git.open_repo(clean)
    before = loose_objects(repo)
    assert run(capsys, "--vendor", "v1.1", "--dry-run")[0] == 0
    assert loose_objects(repo) <= before  # the import packed, the merged tree deleted
    assert run(capsys, "--vendor", "v1.1")[0] == 0
    assert loose_objects(repo) <= before
    assert repo_status(clean) == {}


def test_stack_yaml_ref_follows_the_ref_the_upgrade_was_asked_for(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(tmp_path, deploy_repo, CLEAN_EDITS, ref="v1.0  # the release line")
    monkeypatch.chdir(root)
    code, out, err = run(capsys, "--vendor", "v1.1")
    assert code == 0, err
    assert "stack.yaml: ref v1.0 -> v1.1" in out
    assert (root / "stack.yaml").read_text() == (
        "name: mlstack\nsource: ../rf\nref: v1.1  # the release line\n")
    assert head_commit(root).tree["stack.yaml"].data == (root / "stack.yaml").read_bytes()
    report = json.loads((root / ".stackctl/upgrade/report.json").read_text())
    assert report["stackRef"] == {"from": "v1.0", "to": "v1.1"}
    assert load_stack(root).ref == "v1.1"


def test_upgrading_to_the_vendored_release_changes_nothing(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = refs(clean)
    code, out, err = run(capsys, "--vendor", "v1.0.0")
    assert code == 0, err
    assert "already vendored: nothing to upgrade" in out
    assert refs(clean) == before


def test_missing_vendor_branch_is_rebuilt_from_the_lock(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fresh CI clone has only main: the lock's vendor commit is main's merge parent.
    pygit2.Repository(str(clean)).branches.local.delete("vendor/mlstack")
    code, _, err = run(capsys, "--vendor", "v1.1")
    assert code == 0, err
    assert "restored vendor/mlstack" in err


# ----------------------------------------------------------------------------- refusals


def test_dirty_working_tree_is_refused_and_nothing_changes(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean / "README.md").write_text("edited\n")
    before, files = refs(clean), snapshot(clean)
    code, _, err = run(capsys, "--vendor", "v1.1")
    assert code == 2
    assert "uncommitted changes (README.md)" in err and "will not start an upgrade" in err
    assert refs(clean) == before and snapshot(clean) == files
    with pytest.raises(DirtyWorktreeError):
        upgrade_api.start_upgrade(load_stack(clean), ref="v1.1")


def test_a_ref_that_does_not_resolve_leaves_everything_as_it_was(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files = refs(clean), snapshot(clean)
    code, _, err = run(capsys, "--vendor", "v9")
    assert code == 2 and "error: ref 'v9' does not resolve" in err
    assert refs(clean) == before and snapshot(clean) == files
    assert not (clean / ".stackctl/upgrade/state.json").exists()
    with pytest.raises(SourceError):
        upgrade_api.start_upgrade(load_stack(clean), ref="v9")


def test_an_existing_upgrade_branch_is_refused_before_anything_changes(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = pygit2.Repository(str(clean))
    repo.branches.local.create(BRANCH, repo.head.peel(pygit2.Commit))
    before = refs(clean)
    code, _, err = run(capsys, "--vendor", "v1.1")
    assert code == 2 and f"the branch {BRANCH} already exists" in err
    assert refs(clean) == before


def test_a_failure_while_checking_out_puts_everything_back(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the interrupt arrives in the middle of the checkout.
    from gitops import git

    before, files = refs(clean), snapshot(clean)
    real = git.Repo.checkout

    def interrupted(self: git.Repo, commit: str, *, branch: str | None = None) -> None:
        if branch == BRANCH:
            real(self, commit, branch=branch)
            raise KeyboardInterrupt
        real(self, commit, branch=branch)

    monkeypatch.setattr(git.Repo, "checkout", interrupted)
    with pytest.raises(KeyboardInterrupt):
        upgrade_api.start_upgrade(load_stack(clean), ref="v1.1")
    assert refs(clean) == before and snapshot(clean) == files and repo_status(clean) == {}
    assert not (clean / ".stackctl/upgrade/state.json").exists()


def test_flag_combinations_are_usage_errors(clean: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--continue", "--abort")[0] == 2
    assert run(capsys, "--resolve", "x")[0] == 2
    assert run(capsys, "--dry-run")[0] == 2
    code, _, err = run(capsys)
    assert code == 2 and "give exactly one of --vendor REF" in err


# ----------------------------------------------------------------------------- conflicts


def test_conflicts_check_out_the_merged_tree_with_a_marker_above_each(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_before = refs(conflicted)["main"]
    code, out, err = run(capsys, "--vendor", "v1.1")
    assert code == 1, err
    r = refs(conflicted)
    # The branch stays at main's commit until --continue; the merge is in the working tree.
    assert r["HEAD"] == f"refs/heads/{BRANCH}" and r[BRANCH] == r["main"] == main_before
    assert (conflicted / DEPLOYMENT).read_text() == MARKED_DEPLOYMENT
    assert (conflicted / PARAMS).read_text() == MARKED_PARAMS
    lines = (conflicted / SECRET).read_text().splitlines(keepends=True)
    assert lines[:5] + lines[6:] == secret("local-secret-value").splitlines(keepends=True)
    assert lines[5].startswith("  # stackctl conflict #3 (stringData.password): both-changed, "
                               "ours <redacted sha256:")
    assert lines[5].endswith("; see .stackctl/upgrade/report.md\n")
    assert "password: local-secret-value\n" in (conflicted / SECRET).read_text()
    state = json.loads((conflicted / ".stackctl/upgrade/state.json").read_text())
    assert state["phase"] == "conflicts" and state["originalBranch"] == "main"
    assert [c["conflict"]["address"] for c in state["conflicts"]] == [REPLICAS, LEVEL, PASSWORD]
    # .stackctl/ ignores itself: the state and the reports are not untracked files.
    assert ".stackctl/upgrade/state.json" not in repo_status(conflicted)
    assert "3 conflict(s) to resolve on upgrade/mlstack-v1.1.0" in err
    assert f"  {REPLICAS}\n    both-changed: base 1, ours 3 (kept), theirs 2\n" in out


def test_report_of_a_small_conflicting_upgrade_is_exact(
    conflicted: Path, capsys: pytest.CaptureFixture[str], kustomize: Path
) -> None:
    run(capsys, "--vendor", "v1.1")
    from gitops.kustomize import find_kustomize

    version = find_kustomize().version
    red = json.loads((conflicted / ".stackctl/upgrade/report.json").read_text())
    password = red["merge"]["conflicts"][2]
    b, o, t = password["base"], password["ours"], password["theirs"]
    assert all(v.startswith("<redacted sha256:") for v in (b, o, t)) and len({b, o, t}) == 3
    rows = "\n".join((
        "| `vendor/mlstack/app/deployment.yaml` | `apps/Deployment//web` | `spec.replicas` "
        "| both-changed | `1` | `3` | `2` |",
        '| `vendor/mlstack/app/params.env` |  | `line 2` | both-changed | `"LEVEL=1\\n"` '
        '| `"LEVEL=9\\n"` | `"LEVEL=2\\n"` |',
        "| `vendor/mlstack/db/secret.yaml` | `/Secret//db` | `stringData.password` "
        f"| both-changed | `{b}` | `{o}` | `{t}` |"))
    assert (conflicted / ".stackctl/upgrade/report.md").read_text() == f"""\
# Upgrade mlstack v1.0.0 -> v1.1.0

`main` -> `upgrade/mlstack-v1.1.0`: **conflicts to resolve**.

## Merge

**3 conflicts to resolve.** Each keeps the local value (ours) in the merged tree until resolved.

| files | count |
|---|---|
| taken from upstream (changed only upstream) | 0 |
| kept local (changed only locally) | 0 |
| merged (changed on both sides) | 3 (yaml 2, text 1) |
| moved by upstream | 2 |
| deleted | 2 |
| references rewritten | 1 |
| references unresolved | 0 |

### Conflicts

| file | resource | field | kind | base | ours (kept) | theirs |
|---|---|---|---|---|---|---|
{rows}

Resolve each with `stackctl upgrade --resolve ADDRESS --ours` or `--theirs`:

- `{REPLICAS}`
- `{LEVEL}`
- `{PASSWORD}`

### References rewritten

| file | old | new | evidence |
|---|---|---|---|
| `overlays/gw/kustomization.yaml` | `../../vendor/mlstack/gw-1` | `../../vendor/mlstack/gw-2` \
| similar-content: its kustomization tree is 1.00 similar to vendor/mlstack/gw-2's |

### Moved by upstream

- folder `vendor/mlstack/gw-1` -> `vendor/mlstack/gw-2`

<details><summary>2 files</summary>

- `vendor/mlstack/gw-1/kustomization.yaml` -> `vendor/mlstack/gw-2/kustomization.yaml`
- `vendor/mlstack/gw-1/service.yaml` -> `vendor/mlstack/gw-2/service.yaml`

</details>

### What the rewritten references change

Each rewritten reference's old target rendered from `main` against its new target \
rendered from the merged tree:

- `overlays/gw/kustomization.yaml`: `../../vendor/mlstack/gw-1` -> \
`../../vendor/mlstack/gw-2` (clusters: dev): moved unchanged: the same objects

## Clusters

Each cluster rendered before (`main`) and after (the merged tree) with kustomize {version}.

| cluster | status | objects before | after | added | removed | changed | image changes |
|---|---|---|---|---|---|---|---|
| dev | changed | 4 | 4 | 0 | 0 | 1 | 1 |

### dev

Images:

- `Deployment.apps/web -n dev [web]: reg/web 1.0 -> 1.1`

```diff
~ Deployment.apps/web -n dev
```
"""


def test_secret_values_are_never_printed_or_written_to_the_reports(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, err = run(capsys, "--vendor", "v1.1")
    status = run(capsys, "--status")
    texts = [out, err, status[1], (conflicted / ".stackctl/upgrade/report.md").read_text(),
             (conflicted / ".stackctl/upgrade/report.json").read_text()]
    for value in SECRETS:
        assert not any(value in t for t in texts), value


def test_a_second_upgrade_is_refused_while_one_is_in_progress(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    code, _, err = run(capsys, "--vendor", "v1.1", "--dry-run")
    assert code == 2 and "an upgrade of mlstack to v1.1.0 is already in progress" in err
    with pytest.raises(UpgradeError):
        upgrade_api.start_upgrade(load_stack(conflicted), ref="v1.1")


def test_status_lists_open_and_resolved_conflicts(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--status")[1] == "no upgrade in progress\n"
    run(capsys, "--vendor", "v1.1")
    assert run(capsys, "--resolve", LEVEL, "--theirs")[0] == 0
    code, out, _ = run(capsys, "--status")
    assert code == 1
    assert "conflicts: 3, open: 2" in out
    assert f"#2 resolved (theirs): {LEVEL}" in out and f"#1 open: {REPLICAS}" in out


# ------------------------------------------------------------------------------ resolve


def test_resolve_theirs_sets_upstream_values_in_place_secret_and_text_lines_included(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    for address in (REPLICAS, LEVEL, PASSWORD):
        code, out, err = run(capsys, "--resolve", address, "--theirs")
        assert code == 0, err
        assert f"resolved {address} (theirs)" in out
    # Only the conflicted value changes: comments and every other line stay.
    assert (conflicted / DEPLOYMENT).read_text() == deployment("2  # local: more", "1.1")
    assert (conflicted / PARAMS).read_text() == \
        "MODE=fast\nLEVEL=2\nCOLOR=blue\nSIZE=small\nZONE=a\n"
    assert (conflicted / SECRET).read_text() == secret("upstream-secret-value")
    code, out, _ = run(capsys, "--status")
    assert code == 0 and "next: 'stackctl upgrade --continue' commits the merge" in out


def test_resolve_ours_keeps_the_local_value_and_drops_the_marker(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    assert run(capsys, "--resolve", DEPLOYMENT, "--ours")[0] == 0  # a file: all of its
    assert (conflicted / DEPLOYMENT).read_text() == deployment("3  # local: more", "1.1")
    assert run(capsys, "--resolve", PARAMS, "--ours")[0] == 0
    assert (conflicted / PARAMS).read_text() == CONFLICT_EDITS[PARAMS]


def test_unknown_address_exits_2_listing_the_open_ones(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    run(capsys, "--resolve", LEVEL, "--ours")
    code, _, err = run(capsys, "--resolve", f"{DEPLOYMENT}:apps/Deployment//web:spec.paused",
                       "--theirs")
    assert code == 2
    assert f"Open conflicts: {REPLICAS}; {PASSWORD}." in err
    code, _, err = run(capsys, "--resolve", LEVEL, "--theirs")
    assert code == 2 and f"already resolved: {LEVEL} (ours)" in err


def test_resolve_without_an_upgrade_in_progress_exits_2(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--resolve", REPLICAS, "--ours")
    assert code == 2 and "no upgrade is in progress" in err


def test_a_manual_edit_is_marked_resolved_and_its_marker_never_committed(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    text = (conflicted / DEPLOYMENT).read_text().replace("replicas: 3  # local: more",
                                                         "replicas: 5  # decided by hand")
    (conflicted / DEPLOYMENT).write_text(text)  # the marker line is left in place
    assert run(capsys, "--resolve", REPLICAS, "--mark")[0] == 0
    assert (conflicted / DEPLOYMENT).read_text() == deployment("5  # decided by hand", "1.1")
    run(capsys, "--resolve", LEVEL, "--mark")
    run(capsys, "--resolve", PASSWORD, "--ours")
    code, _, err = run(capsys, "--continue")
    assert code == 0, err
    committed = pygit2.Repository(str(conflicted)).revparse_single(f"HEAD:{PARAMS}")
    assert isinstance(committed, pygit2.Blob)
    assert committed.data.decode() == CONFLICT_EDITS[PARAMS]  # marker gone, ours kept


# ----------------------------------------------------------------------------- continue


def test_continue_refuses_while_conflicts_are_open(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    run(capsys, "--resolve", REPLICAS, "--theirs")
    before = refs(conflicted)
    code, _, err = run(capsys, "--continue")
    assert code == 1
    assert "2 conflict(s) are still open" in err and LEVEL in err and PASSWORD in err
    assert refs(conflicted) == before


def test_continue_commits_the_resolved_merge_and_removes_the_state(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_before = refs(conflicted)["main"]
    run(capsys, "--vendor", "v1.1")
    run(capsys, "--resolve", REPLICAS, "--theirs")
    run(capsys, "--resolve", LEVEL, "--theirs")
    run(capsys, "--resolve", PASSWORD, "--ours")
    (conflicted / "overlays/gw/extra.yaml").write_text("# a file added while resolving\n")
    code, out, err = run(capsys, "--continue")
    assert code == 0, err
    r = refs(conflicted)
    commit = head_commit(conflicted)
    assert r["HEAD"] == f"refs/heads/{BRANCH}" and r[BRANCH] == str(commit.id)
    assert [str(p) for p in commit.parent_ids] == [main_before, r["vendor/mlstack"]]
    assert r["main"] == main_before
    assert "3 conflict(s) resolved (ours 1, theirs 2)" in commit.message
    assert repo_status(conflicted) == {"overlays/gw/extra.yaml": pygit2.enums.FileStatus.WT_NEW}
    assert not (conflicted / ".stackctl/upgrade/state.json").exists()
    assert (conflicted / SECRET).read_text() == secret("local-secret-value")
    lock = read_lock(conflicted)
    assert lock is not None and lock.entries[0].resolved == "v1.1.0"
    assert f"{REPLICAS}  [resolved: theirs]" in out
    assert "dev: changed, 4 -> 4 objects: 1 added, 1 removed, 1 changed" in out
    data = json.loads((conflicted / ".stackctl/upgrade/report.json").read_text())
    assert data["outcome"] == "committed" and data["openConflicts"] == []
    assert data["resolutions"] == {REPLICAS: "theirs", LEVEL: "theirs", PASSWORD: "ours"}


def test_continue_without_an_upgrade_in_progress_exits_2(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--continue")
    assert code == 2 and "no upgrade is in progress" in err


# -------------------------------------------------------------------------------- abort


def test_abort_restores_the_original_branch_and_working_tree_exactly(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files = refs(conflicted), snapshot(conflicted)
    run(capsys, "--vendor", "v1.1")
    run(capsys, "--resolve", REPLICAS, "--theirs")
    (conflicted / PARAMS).write_text("edited while resolving\n")
    (conflicted / V / "gw-2/service.yaml").unlink()
    code, out, err = run(capsys, "--abort")
    assert code == 0, err
    assert "upgrade to v1.1.0 aborted: back on main" in out
    assert refs(conflicted) == before  # upgrade branch gone, vendor branch put back
    assert snapshot(conflicted) == files
    assert repo_status(conflicted) == {}
    assert not (conflicted / ".stackctl/upgrade/state.json").exists()
    # And the same upgrade can start again.
    assert run(capsys, "--vendor", "v1.1")[0] == 1


def test_abort_without_an_upgrade_in_progress_exits_2(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--abort")
    assert code == 2 and "no upgrade is in progress" in err


# -------------------------------------------------------------------- cluster renders


def _dropped_db_repo(tmp_path: Path, deploy_repo: Callable[..., Path]) -> Path:
    """v1.1.0 drops the db component; the cluster still includes it by path."""
    releases = {k: dict(v) for k, v in RELEASES.items()}
    for p in ("db/kustomization.yaml", "db/secret.yaml"):
        del releases["v1.1.0"][p]
    releases["v1.1.0"]["kustomization.yaml"] = KUSTOMIZATION + "resources:\n- app\n"
    release_folder(tmp_path / "rf", releases)
    root = deploy_repo(source="../rf")
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {
        "overlays/gw/kustomization.yaml": GATEWAY_OVERLAY,
        "clusters/dev/kustomization.yaml": KUSTOMIZATION + "namespace: dev\nresources:\n"
        "- ../../vendor/mlstack/app\n- ../../vendor/mlstack/db\n- ../../overlays/gw\n",
    })
    commit_all(pygit2.Repository(str(root)), "local customizations")
    return root


DB_REF = "clusters/dev/kustomization.yaml::resources[../../vendor/mlstack/db]"


def test_a_reference_upstream_deleted_is_a_conflict_and_its_cluster_failing_is_reported(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _dropped_db_repo(tmp_path, deploy_repo)
    monkeypatch.chdir(root)
    code, out, err = run(capsys, "--vendor", "v1.1")
    assert code == 1, err
    assert refs(root)["HEAD"] == f"refs/heads/{BRANCH}"
    assert "dev: fails to render after:" in out
    # The after side rendered in a temporary folder, gone by now: never named.
    assert "stackctl-upgrade-" not in out and "(rendered from the merged tree" in out
    assert f"  {DB_REF}\n    unresolved-reference: vendor/mlstack/db no longer exists" in out
    data = json.loads((root / ".stackctl/upgrade/report.json").read_text())
    assert data["outcome"] == "conflicts"
    assert data["openConflicts"] == [DB_REF]
    assert data["clusters"][0]["status"] == "failed"
    assert data["clusters"][0]["errorSide"] == "after"
    assert data["merge"]["unresolved_references"] == [{
        "file": "clusters/dev/kustomization.yaml", "reference": "../../vendor/mlstack/db",
        "target": "vendor/mlstack/db", "candidates": []}]
    kfile = root / "clusters/dev/kustomization.yaml"
    assert "# stackctl conflict #1 (resources[../../vendor/mlstack/db]): unresolved-reference" \
        in kfile.read_text()

    # --theirs takes upstream's deletion: the entry goes, and the cluster renders again.
    assert run(capsys, "--resolve", DB_REF, "--theirs")[0] == 0
    assert kfile.read_text() == KUSTOMIZATION + "namespace: dev\nresources:\n" \
        "- ../../vendor/mlstack/app\n- ../../overlays/gw\n"
    code, out, err = run(capsys, "--continue")
    assert code == 0, err
    assert "dev: changed" in out


def test_an_unresolved_reference_takes_the_new_path_given_and_refuses_one_that_is_not_there(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _dropped_db_repo(tmp_path, deploy_repo)
    write_files(root, {"overlays/db/kustomization.yaml": KUSTOMIZATION + "resources:\n"
                       "- secret.yaml\n", "overlays/db/secret.yaml": secret("local-db")})
    commit_all(pygit2.Repository(str(root)), "a local db")
    monkeypatch.chdir(root)
    assert run(capsys, "--vendor", "v1.1")[0] == 1
    code, _out, err = run(capsys, "--resolve", DB_REF, "--path", "../../overlays/nope")
    assert code == 2
    assert "../../overlays/nope does not exist from clusters/dev/" in err
    code, _out, err = run(capsys, "--resolve", DB_REF, "--path", "../../overlays/db")
    assert code == 0, err
    assert (root / "clusters/dev/kustomization.yaml").read_text() == (
        KUSTOMIZATION + "namespace: dev\nresources:\n- ../../vendor/mlstack/app\n"
        "- ../../overlays/db\n- ../../overlays/gw\n")
    code, _out, err = run(capsys, "--resolve", REPLICAS, "--path", "x")
    assert code == 2 and "no conflict of the upgrade has the address" in err
    code, _out, err = run(capsys, "--continue")
    assert code == 0, err
    report = json.loads((root / ".stackctl/upgrade/report.json").read_text())
    assert report["resolutions"] == {DB_REF: "path ../../overlays/db"}


# ------------------------------------------------------- whole files and whole resources


ROLES = ("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\n"
         "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: b\n")


def whole_file_repo(tmp_path: Path, deploy_repo: Callable[..., Path]) -> Path:
    """Upstream edits notes.txt (ours deleted it), deletes old.txt (ours edited it) and the
    ServiceAccount b (ours labelled it)."""
    roles = ROLES
    releases = {k: dict(v) for k, v in RELEASES.items()}
    releases["v1.0.0"].update({"notes.txt": "base\n", "old.txt": "old\n",
                               "app/accounts.yaml": roles})
    # v1.1.0 edits notes.txt, deletes old.txt and the ServiceAccount b.
    releases["v1.1.0"].update({"notes.txt": "upstream\n",
                               "app/accounts.yaml": roles.split("---\n")[0]})
    release_folder(tmp_path / "rf", releases)
    root = deploy_repo(source="../rf")
    import_release(load_stack(root), ref="v1.0.0")
    (root / V / "notes.txt").unlink()  # ours deleted what upstream edits
    write_files(root, {f"{V}/old.txt": "old, edited here\n",  # ours edited what upstream drops
                       f"{V}/app/accounts.yaml": roles + "  labels:\n    local: 'yes'\n"})
    commit_all(pygit2.Repository(str(root)), "local customizations")
    return root


def test_whole_file_and_whole_resource_conflicts_resolve_to_either_side(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = whole_file_repo(tmp_path, deploy_repo)
    roles = ROLES
    monkeypatch.chdir(root)
    code, _, err = run(capsys, "--vendor", "v1.1")
    assert code == 1, err
    state = json.loads((root / ".stackctl/upgrade/state.json").read_text())
    kinds = {c["conflict"]["address"]: c["conflict"]["kind"] for c in state["conflicts"]}
    assert kinds == {
        f"{V}/app/accounts.yaml:/ServiceAccount//b": "deleted-upstream",
        f"{V}/notes.txt": "deleted-locally",
        f"{V}/old.txt": "deleted-upstream",
    }
    assert not (root / V / "notes.txt").exists()
    assert (root / V / "old.txt").read_text().startswith("old, edited here")
    assert run(capsys, "--resolve", f"{V}/notes.txt", "--theirs")[0] == 0
    assert (root / V / "notes.txt").read_text() == "upstream\n"
    assert run(capsys, "--resolve", f"{V}/old.txt", "--theirs")[0] == 0
    assert not (root / V / "old.txt").exists()
    assert run(capsys, "--resolve", f"{V}/app/accounts.yaml", "--theirs")[0] == 0
    assert (root / V / "app/accounts.yaml").read_text() == roles.split("---\n")[0]
    code, _, err = run(capsys, "--continue")
    assert code == 0, err
    assert repo_status(root) == {}
    committed = pygit2.Repository(str(root)).revparse_single(f"HEAD:{V}/notes.txt")
    assert isinstance(committed, pygit2.Blob) and committed.data == b"upstream\n"
    with pytest.raises(KeyError):
        pygit2.Repository(str(root)).revparse_single(f"HEAD:{V}/old.txt")


def test_abort_removes_a_file_a_resolution_brought_back(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = whole_file_repo(tmp_path, deploy_repo)
    monkeypatch.chdir(root)
    before, files = refs(root), snapshot(root)
    run(capsys, "--vendor", "v1.1")
    run(capsys, "--resolve", f"{V}/notes.txt", "--theirs")
    assert (root / V / "notes.txt").is_file()
    assert run(capsys, "--abort")[0] == 0
    assert refs(root) == before and snapshot(root) == files and repo_status(root) == {}


def test_a_stack_in_a_subfolder_of_the_repository_upgrades_and_aborts(
    tmp_path: Path, git_env: Path, kustomize: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    release_folder(tmp_path / "rf", RELEASES)
    top = tmp_path / "repo"
    root = top / "platform"
    write_files(root, {"stack.yaml": "name: mlstack\nsource: ../../rf\n"})
    write_files(top, {"README.md": "# the whole repository\n"})
    repo = pygit2.init_repository(str(top), initial_head="main")
    commit_all(repo, "initial")
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {"overlays/gw/kustomization.yaml": GATEWAY_OVERLAY,
                       "clusters/dev/kustomization.yaml": CLUSTER, **CONFLICT_EDITS})
    commit_all(repo, "local customizations")
    monkeypatch.chdir(root)
    before, files = refs(top), snapshot(top)
    code, _, err = run(capsys, "--vendor", "v1.1")
    assert code == 1, err
    assert (root / DEPLOYMENT).read_text() == MARKED_DEPLOYMENT
    assert (root / ".stackctl/upgrade/state.json").is_file()
    assert run(capsys, "--abort")[0] == 0
    assert refs(top) == before and snapshot(top) == files and repo_status(top) == {}
    assert run(capsys, "--vendor", "v1.1")[0] == 1
    for address in (REPLICAS, LEVEL, PASSWORD):
        assert run(capsys, "--resolve", address, "--theirs")[0] == 0
    code, _, err = run(capsys, "--continue")
    assert code == 0, err
    commit = head_commit(top)
    assert len(commit.parent_ids) == 2 and repo_status(top) == {}
    blob = repo.revparse_single(f"HEAD:platform/{DEPLOYMENT}")
    assert isinstance(blob, pygit2.Blob) and blob.data.decode() == deployment("2  # local: more",
                                                                               "1.1")
    assert repo.revparse_single("HEAD:README.md").data == b"# the whole repository\n"


def test_a_kustomization_conflict_is_marked_and_resolved_in_its_keyed_list(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def app(tag: str) -> str:
        return (KUSTOMIZATION + "resources:\n- deployment.yaml\nimages:\n- name: reg/web\n"
                f"  newTag: {tag}\n")

    releases = {k: dict(v) for k, v in RELEASES.items()}
    releases["v1.0.0"]["app/kustomization.yaml"] = app("'1.0'")
    releases["v1.1.0"]["app/kustomization.yaml"] = app("'1.1'")
    release_folder(tmp_path / "rf", releases)
    root = deploy_repo(source="../rf")
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {f"{V}/app/kustomization.yaml": app("1.0-patched  # local fix")})
    commit_all(pygit2.Repository(str(root)), "local customizations")
    monkeypatch.chdir(root)
    assert run(capsys, "--vendor", "v1.1")[0] == 1
    address = f"{V}/app/kustomization.yaml::images[name=reg/web].newTag"
    state = json.loads((root / ".stackctl/upgrade/state.json").read_text())
    assert [c["conflict"]["address"] for c in state["conflicts"]] == [address]
    path = root / V / "app/kustomization.yaml"
    assert path.read_text() == app("1.0-patched  # local fix").replace(
        "  newTag:", "  # stackctl conflict #1 (images[name=reg/web].newTag): both-changed, "
        "ours 1.0-patched kept, theirs 1.1, base 1.0; see .stackctl/upgrade/report.md\n"
        "  newTag:")
    code, _, err = run(capsys, "--resolve", address, "--theirs")
    assert code == 0, err
    # The local comment stays in its column (ruamel keeps comment positions).
    assert path.read_text() == app("'1.1'        # local fix")


def test_continue_refuses_when_someone_committed_on_the_upgrade_branch(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--vendor", "v1.1")
    for address in (REPLICAS, LEVEL, PASSWORD):
        run(capsys, "--resolve", address, "--ours")
    commit_all(pygit2.Repository(str(conflicted)), "wip", branch=BRANCH)
    before = refs(conflicted)
    code, _, err = run(capsys, "--continue")
    assert code == 2 and f"the branch {BRANCH} moved since the upgrade started" in err
    assert "git reset --soft" in err and refs(conflicted) == before


# ------------------------------------------------------------------------ effect check


def test_a_mirror_of_an_image_upstream_renamed_is_a_finding_naming_the_new_image(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    releases = {k: dict(v) for k, v in RELEASES.items()}
    releases["v1.1.0"]["app/deployment.yaml"] = deployment("2", "1.1").replace(
        "reg/web:1.1", "ghcr.io/web/web-app:1.1")
    release_folder(tmp_path / "rf", releases)
    root = deploy_repo(source="../rf")
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {"overlays/gw/kustomization.yaml": GATEWAY_OVERLAY,
                       "clusters/dev/kustomization.yaml": CLUSTER
                       + "images:\n- name: reg/web\n  newName: mirror.example.com/web\n"})
    commit_all(pygit2.Repository(str(root)), "a registry mirror")
    monkeypatch.chdir(root)

    code, out, err = run(capsys, "--vendor", "v1.1")

    assert code == 1, err
    address = "clusters/dev/kustomization.yaml::images[name=reg/web]"
    report = json.loads((root / ".stackctl/upgrade/report.json").read_text())
    (finding,) = [c for c in report["merge"]["conflicts"] if c["kind"] == "no-effect"]
    assert finding["address"] == address
    assert finding["theirs"] == (
        "no container runs mirror.example.com/web any more; Deployment/web -n dev [web] now "
        "runs ghcr.io/web/web-app; likely successor: images entry name ghcr.io/web/web-app "
        "(the same container's image)")
    assert f"  {address}\n    no-effect: images entry reg/web\n" in out
    assert "# stackctl conflict #1 (images[name=reg/web]): no-effect after the upgrade" in (
        root / "clusters/dev/kustomization.yaml").read_text()
    code, _, err = run(capsys, "--resolve", address, "--theirs")
    assert code == 2 and "upstream has no value to take for it" in err
    # The person follows the successor and marks it.
    kfile = root / "clusters/dev/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("name: reg/web", "name: ghcr.io/web/web-app"))
    assert run(capsys, "--resolve", address, "--mark")[0] == 0
    code, out, err = run(capsys, "--continue")
    assert code == 0, err
    assert "- name: ghcr.io/web/web-app\n  newName: mirror.example.com/web\n" in \
        kfile.read_text()


SCRIPT_LINES = [f"echo step {i}" for i in range(10)]


def _script_cm(lines: list[str]) -> str:
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\ndata:\n  run.sh: |\n"
            + "".join(f"    {x}\n" for x in lines))


def test_a_hunk_of_a_multi_line_value_resolves_to_theirs_in_place(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    releases = {k: dict(v) for k, v in RELEASES.items()}
    theirs = [*SCRIPT_LINES]
    theirs[2], theirs[8] = "echo upstream step 2", "echo upstream step 8"
    releases["v1.0.0"]["app/script.yaml"] = _script_cm(SCRIPT_LINES)
    releases["v1.1.0"]["app/script.yaml"] = _script_cm(theirs)
    for v in releases.values():
        v["app/kustomization.yaml"] = str(v["app/kustomization.yaml"]).replace(
            "- deployment.yaml\n", "- deployment.yaml\n- script.yaml\n")
    release_folder(tmp_path / "rf", releases)
    root = deploy_repo(source="../rf")
    import_release(load_stack(root), ref="v1.0.0")
    ours = [*SCRIPT_LINES]
    ours[2] = "echo local step 2"
    write_files(root, {"overlays/gw/kustomization.yaml": GATEWAY_OVERLAY,
                       "clusters/dev/kustomization.yaml": CLUSTER,
                       f"{V}/app/script.yaml": _script_cm(ours)})
    commit_all(pygit2.Repository(str(root)), "a local script line")
    monkeypatch.chdir(root)

    code, out, err = run(capsys, "--vendor", "v1.1")

    assert code == 1, err
    address = f'{V}/app/script.yaml:/ConfigMap//script:data["run.sh"]@L3'
    assert (f"  {address}\n    both-changed in line 3 of the value (ours kept):\n"
            "      base   | echo step 2\n      ours   | echo local step 2\n"
            "      theirs | echo upstream step 2\n") in out
    script = root / V / "app/script.yaml"
    merged = [*ours]
    merged[8] = "echo upstream step 8"  # the other change merged cleanly
    assert script.read_text() == _script_cm(merged).replace(
        "\ndata:\n", "\ndata:\n  # stackctl conflict #1 (data[\"run.sh\"]@L3): both-changed, "
        "line 3 of the value, ours echo local step 2 kept, theirs echo upstream step 2, base echo "
        "step 2; see .stackctl/upgrade/report.md\n")
    assert run(capsys, "--resolve", address, "--theirs")[0] == 0
    assert script.read_text() == _script_cm(theirs)
    assert run(capsys, "--continue")[0] == 0
