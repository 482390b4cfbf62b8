"""`stackctl upgrade --kustomize VERSION`: move the stack's kustomize pin (stack.yaml
`kustomize:`) as a planned change. Every cluster is rendered from the current branch with
the release it renders with now and with VERSION, the differences are reported as for an
upstream upgrade, and the new pin is committed on a branch of its own
(`upgrade/kustomize-VERSION`); the current branch is never modified.

kustomize's output is not stable across releases (Kubeflow v1.9.1's user Profile renders as
`$(profile-name)` with v5.8.2 and `kubeflow-user-example-com` with v5.5.0), so a new release
is reviewed like any other change before it reaches a cluster.
"""

from __future__ import annotations

import re
from dataclasses import replace

from gitops import git
from gitops.errors import GitError, UpgradeError
from gitops.kustomize import find_kustomize
from gitops.merge import MergeReport
from gitops.redact import Redactor
from gitops.stack import STACK_FILE, Stack
from gitops.upgrade.common import Progress, UpgradeResult, open_stack_repo, write_reports
from gitops.upgrade.renders import SideRenders, summarise
from gitops.upgrade.report import UpgradeReport
from gitops.upgrade.state import load_state

_PIN = re.compile(r"^kustomize:[ \t]*[^\s#]*", re.MULTILINE)


def pinned_text(text: str, version: str) -> str:
    """stack.yaml with `kustomize: VERSION` (the line replaced, or added after `ref:` or at
    the end), every other line as it was."""
    if _PIN.search(text):
        return _PIN.sub(f"kustomize: {version}", text, count=1)
    ref = re.search(r"^ref:.*\n", text, re.MULTILINE)
    line = f"kustomize: {version}\n"
    if ref is not None:
        return text[: ref.end()] + line + text[ref.end():]
    return text + ("" if text.endswith("\n") or not text else "\n") + line


def empty_merge() -> MergeReport:
    return MergeReport(conflicts=(), merged={}, taken_upstream=0, kept_local=0, unchanged=0,
                       moves={}, folder_moves={}, rewritten_references=(),
                       unresolved_references=(), deleted=())


def upgrade_kustomize(stack: Stack, *, version: str, branch: str | None = None,
                      dry_run: bool = False, progress: Progress | None = None,
                      redactor: Redactor | None = None) -> UpgradeResult:
    """Render every cluster with the current kustomize and with `version`, report the
    differences, and commit the new pin on `upgrade/kustomize-<version>` (or `branch`)."""
    say = progress or (lambda _m: None)
    repo, prefix = open_stack_repo(stack)
    if load_state(stack.root) is not None:
        raise UpgradeError("an upgrade is in progress.",
                           hint="Finish it ('stackctl upgrade --continue') or drop it "
                           "('stackctl upgrade --abort') first.")
    original, head = repo.current_branch(), repo.head_commit()
    if original is None or head is None:
        raise GitError("HEAD is detached or the repository has no commit, so there is no "
                       "branch to upgrade.",
                       hint="Switch to your branch (git switch main) and run it again.")
    if not dry_run:
        repo.require_clean(action="upgrade kustomize")
    old = find_kustomize(version=stack.kustomize)
    new = find_kustomize(version=version)
    upgrade_branch = branch or f"upgrade/kustomize-{new.version}"
    ours = repo.read_tree(head, prefix)
    stack_file = ours.get(STACK_FILE)
    assert stack_file is not None  # load_stack read it
    text = stack_file[1].decode("utf-8")
    new_text = pinned_text(text, new.version)
    if stack.kustomize == new.version or (old.version == new.version and new_text == text):
        report = UpgradeReport(name="kustomize", from_version=old.version,
                               to_version=new.version, original_branch=original,
                               upgrade_branch=None, outcome="up-to-date", merge=empty_merge(),
                               tool=True)
        return UpgradeResult("up-to-date", report, original, None, None, None, None, None,
                             report_paths=write_reports(stack.root, report))
    if not dry_run and repo.branch_commit(upgrade_branch) is not None:
        raise UpgradeError(f"the branch {upgrade_branch} already exists.",
                           hint=f"Delete it (git branch -D {upgrade_branch}) or name another "
                           "with --branch NAME.")
    plain = replace(stack, kustomize=None)  # each side renders with its own release
    commit_in_place = None if dry_run else head
    with SideRenders(plain, old, progress=progress) as b_side, \
            SideRenders(plain, new, progress=progress) as a_side:
        say(f"rendering with kustomize {old.version} (before) and {new.version} (after)")
        b = b_side.start("before", ours, commit=commit_in_place)
        a = a_side.start("after", ours, commit=commit_in_place)
        clusters = summarise(b.result(), a.result(),
                             redactor=redactor or Redactor.from_config(stack.root))
    outcome = "dry-run" if dry_run else "committed"
    commit = None
    if not dry_run:
        head_tree = repo.commit_tree_id(head)
        assert head_tree is not None
        tree = repo.replace_file(head_tree, git.join_prefix(prefix, STACK_FILE),
                                 new_text.encode(), stack_file[0])
        commit = repo.create_commit(
            tree, f"Upgrade kustomize {old.version} -> {new.version}\n\nThe stack's renders "
            f"move to kustomize {new.version} with 'stackctl upgrade --kustomize'.\n", [head])
        repo.create_branch(upgrade_branch, commit)
        say(f"checking out {upgrade_branch}")
        try:
            repo.checkout(commit, branch=upgrade_branch)
        except BaseException:
            repo.checkout(head, branch=original)
            repo.delete_branch(upgrade_branch)
            raise
    report = UpgradeReport(
        name="kustomize", from_version=old.version, to_version=new.version,
        original_branch=original, upgrade_branch=None if dry_run else upgrade_branch,
        outcome=outcome, merge=empty_merge(), clusters=clusters,
        kustomize_version=new.version, commit=commit, tool=True)
    return UpgradeResult(outcome, report, original, report.upgrade_branch, None, commit, None,
                         None, report_paths=write_reports(stack.root, report))


__all__ = ["pinned_text", "upgrade_kustomize"]
