"""Real Kubeflow upgrades with a platform team's customizations (tests/fixtures/
upgrade_scenarios.py, release pairs in upgrade_releases.py and upgrade_scenario_v1_11.py;
repos made by tests/fixtures/upgrade_repo.py): three single-release pairs, v1.10.2 ->
v1.11.0 (remote bases, fetched from the test mirror), and three multi-release jumps across
upstream's restructures (v1.4.0 -> v1.6.1, v1.6.1 -> v1.9.1, v1.8.1 -> v1.10.2).

Each deployment repo is made for real (`stackctl init`, `vendor import` of the base
release from ../shared's archive folder, one commit of customizations). Then:
- merge_trees on the three trees: only the planned conflicts, every customization's text
  in the merged files, local edits at the paths upstream moved their files to;
- `start_upgrade` (the real engine), once per scenario for the whole module (the renders
  are the slow part: ~4 s a cluster on two cores), then the person's answers of the
  scenario (`--resolve ... --path NEW`); the after-render of the working tree checks each
  customization: kept, or reported; none lost silently; every reference rewritten to where
  the scenario says (none guessed), and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitops import git
from gitops.merge import ConflictKind, merge_trees
from gitops.merge.references import SAME_TARGET
from gitops.upgrade import REPORT_JSON, REPORT_MD, UpgradeResult
from tests.fixtures.gitrepos import isolated_git
from tests.fixtures.kubeflow import KUBEFLOW_DIR, require_kubeflow
from tests.fixtures.kustomize import _FOUND as KUSTOMIZE
from tests.fixtures.remote_mirror import FILE_REMOTES, GIT_REMOTES, REMOTE_BASES, Mirror
from tests.fixtures.upgrade_repo import (
    DeployRepo,
    Evaluation,
    PersonRun,
    Verdict,
    build_repo,
    classify,
    evaluate,
    merge_inputs,
    moved_local_references,
    release_files,
    release_reader,
    reports,
    upgrade_as_a_person,
    write_tree,
    wrong_rewrites,
)
from tests.fixtures.upgrade_scenarios import (
    CLUSTERS,
    KINDS,
    PLATFORM_KINDS,
    Scenario,
    V,
    scenarios,
)

# A scenario upgraded once serves five tests; its renders (seconds each) count against the
# first, which on a loaded 2-core machine can take minutes.
pytestmark = [pytest.mark.kubeflow, pytest.mark.slow, pytest.mark.timeout(1800)]


def _all() -> list[Scenario]:
    if not KUBEFLOW_DIR.is_dir():
        return []
    return scenarios(release_reader(KUBEFLOW_DIR))


ALL = _all()
IDS = [s.name.replace("->", "-to-") for s in ALL]


@pytest.fixture(params=ALL, ids=IDS)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    s: Scenario = request.param
    require_kubeflow(s.base)
    require_kubeflow(s.new)
    return s


def test_every_scenario_makes_each_kind_of_customization_as_vendor_edit_and_as_overlay(
    scenario: Scenario,
) -> None:
    made = {(c.key, c.how) for c in scenario.customizations}
    assert made >= {(k, how) for k in KINDS for how in ("vendor", "overlay")}
    assert ("conflict", "vendor") in made and scenario.conflicts
    if scenario.multi:
        assert {c.key for c in scenario.customizations} >= set(PLATFORM_KINDS)
    ids = [c.id for c in scenario.customizations]
    assert len(ids) == len(set(ids))
    assert set(scenario.outcomes) <= set(ids)


def _reported_on_purpose(scenario: Scenario, path: str) -> bool:
    """A file holding a customization the scenario expects to be reported."""
    return any(scenario.outcome(c) == "reported" and any(p == path for p, _ in c.evidence)
               for c in scenario.customizations)


@pytest.mark.parametrize("base", ["v1.7.0"])
def test_v1_7_0_edits_of_istio_1_16_are_carried_to_istio_1_17_which_v1_8_0_uses(
    base: str, tmp_path: Path, git_env: Path,
) -> None:
    scenario = next(s for s in ALL if s.base == base)
    repo = build_repo(tmp_path / "deploy", scenario, archives=KUBEFLOW_DIR)
    b, ours, theirs = merge_inputs(repo)
    m = merge_trees(b, ours, theirs, vendor_prefix=V)
    old = V + "common/istio-1-16/istio-install/base/patches/service.yaml"
    new = V + "common/istio-1-17/istio-install/base/patches/service.yaml"
    assert m.carried == {old: new}
    assert m.files[new] == m.files[old] == ours[old]


# ------------------------------------------------------------------------ the real engine


@dataclass(frozen=True)
class Upgraded:
    scenario: Scenario
    repo: DeployRepo
    inputs: tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]  # base, ours, theirs
    before: Evaluation
    run: PersonRun
    after: Evaluation
    verdict: Verdict

    @property
    def result(self) -> UpgradeResult:
        r: UpgradeResult = self.run.start
        return r


@pytest.fixture(scope="module", params=ALL, ids=IDS)
def upgraded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Upgraded]:
    """The scenario's repo upgraded once by the real engine and rendered before and after
    (shared by the tests below: each render of a Kubeflow cluster takes seconds)."""
    s: Scenario = request.param
    require_kubeflow(s.base)
    require_kubeflow(s.new)
    if KUSTOMIZE is None:
        pytest.skip("no kustomize binary: run 'make kustomize' or set STACKCTL_KUSTOMIZE")
    home = tmp_path_factory.mktemp("home")
    # Remote bases come from the test mirror, never GitHub (as the autouse fixture of
    # tests/fixtures/remote_mirror.py does for each test; this one outlives a test).
    mirror: Mirror = request.getfixturevalue(
        "remote_mirror" if all((REMOTE_BASES / a).is_file() for a in (*GIT_REMOTES,
                                                                      *FILE_REMOTES))
        else "tiny_remote_mirror")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STACKCTL_KUSTOMIZE", str(KUSTOMIZE))
        mp.setenv("STACKCTL_MIRRORS", mirror.env)
        env = isolated_git(home, mp)
        next(env)
        try:
            repo = build_repo(tmp_path_factory.mktemp("deploy") / "repo", s,
                              archives=KUBEFLOW_DIR)
            inputs = merge_inputs(repo)  # for merge_trees alone, before the vendor branch moves
            before = evaluate(s, repo.root, use_cache=True)  # the upgrade reuses these
            run = upgrade_as_a_person(repo.root, s)
            after = evaluate(s, repo.root, use_cache=True)  # the committed tree
        finally:
            next(env, None)
    verdict = classify(s, after, run.addresses)
    yield Upgraded(s, repo, inputs, before, run, after, verdict)


def test_merge_trees_reports_only_the_planned_conflicts_and_local_edits_follow_moves(
    upgraded: Upgraded,
) -> None:
    scenario = upgraded.scenario
    base, ours, theirs = upgraded.inputs

    m = merge_trees(base, ours, theirs, vendor_prefix=V)

    merged = {(c.path, c.field) for c in m.conflicts
              if c.kind is not ConflictKind.UNRESOLVED_REFERENCE and c.hunk is None}
    assert merged >= {(c.path, c.field) for c in scenario.conflicts}
    assert not [c for c in merged if c not in {(x.path, x.field) for x in scenario.conflicts}
                and not _reported_on_purpose(scenario, c[0])]
    assert {u.target for u in m.unresolved_references} == {
        V + t for t, new in scenario.rewrites.items() if new is None}
    rewritten = [(r.old_target, r.new_target) for r in m.rewritten_references
                 if r.evidence_kind != SAME_TARGET]
    assert wrong_rewrites(scenario, rewritten, []) == []
    for c in scenario.customizations:
        if scenario.outcome(c) == "reported":
            continue
        for path, text in c.evidence:
            content = m.files[path].decode()
            assert (text[1:] not in content) if text.startswith("!") else (text in content), \
                (c.id, path)
    for old, new in scenario.followed_moves.items():
        assert old not in m.files, old
        assert m.files[new] != theirs[new], f"the local edit of {old} did not follow to {new}"


def test_every_customization_holds_before_the_upgrade(upgraded: Upgraded) -> None:
    assert (upgraded.before.lost, dict(upgraded.before.errors)) == ((), {}), \
        "the scenario's checks are wrong"


def test_the_upgrade_loses_no_customization_silently(upgraded: Upgraded) -> None:
    assert upgraded.verdict.lost == ()


def test_no_conflict_or_finding_is_spurious(upgraded: Upgraded) -> None:
    # Each one reported on the way is a planned conflict, or names a customization a
    # correct upgrade cannot keep as it is (a kept one named would be a false alarm).
    s = upgraded.scenario
    planned = {c.address for c in upgraded.result.conflicts
               if (c.path, c.field) in {(x.path, x.field) for x in s.conflicts}}
    markers = [m for c in s.customizations if s.outcome(c) == "reported"
               for m in c.report_markers]
    assert [a for a in upgraded.run.addresses
            if a not in planned and not any(reports(m, a) for m in markers)] == []


def test_each_customization_is_kept_or_reported_as_the_scenario_says(upgraded: Upgraded) -> None:
    s, v = upgraded.scenario, upgraded.verdict
    assert {c.id: v.of(c.id) for c in s.customizations} == {
        c.id: s.outcome(c) for c in s.customizations}


def test_the_scenario_expects_a_rewrite_of_each_local_reference_upstream_moved_and_no_other(
    upgraded: Upgraded,
) -> None:
    # Read from the trees without the engine: an expected rewrite of a reference our side
    # does not hold (or a moved reference the scenario forgot) is the scenario's error.
    base, ours, theirs = upgraded.inputs
    assert moved_local_references(base, ours, theirs) == {
        V + t for t in upgraded.scenario.rewrites}, "the scenario's rewrites are wrong"


def test_references_are_rewritten_only_where_the_scenario_says_and_each_names_its_evidence(
    upgraded: Upgraded,
) -> None:
    tree = upgraded.result.tree
    assert tree is not None
    rewritten = [r for r in tree.rewritten_references if r.evidence_kind != SAME_TARGET]
    assert wrong_rewrites(upgraded.scenario, [(r.old_target, r.new_target) for r in rewritten],
                          [u.target for u in tree.unresolved_references]) == []
    seen = {r.old_target for r in rewritten} | {u.target for u in tree.unresolved_references}
    assert {V + t for t in upgraded.scenario.rewrites} <= seen
    assert all(r.evidence for r in rewritten)
    effects = {(e.file, e.old) for e in upgraded.result.report.rewrites}
    assert {(r.file, r.old) for r in rewritten} == effects


def test_the_planned_conflicts_are_reported_and_the_upgraded_tree_renders(
    upgraded: Upgraded,
) -> None:
    result, s = upgraded.result, upgraded.scenario
    assert result.outcome == "conflicts"
    assert {(c.path, c.field) for c in s.conflicts} <= {
        (c.path, c.field) for c in result.conflicts}
    assert git.open_repo(upgraded.repo.root).current_branch() == f"upgrade/kubeflow-{s.new}"
    assert upgraded.run.final.outcome == "committed"
    assert dict(upgraded.after.errors) == {}
    assert len(upgraded.run.resolved) == len(s.resolutions)
    for old, new in s.followed_moves.items():
        assert not (upgraded.repo.root / old).exists()
        assert (upgraded.repo.root / new).read_bytes() != release_files(
            KUBEFLOW_DIR, s.new)[new]
    report = json.loads((upgraded.repo.root / REPORT_JSON).read_text())
    assert [c["address"] for c in report["merge"]["conflicts"]] == [
        c.address for c in upgraded.run.final.conflicts]
    assert set(report["resolutions"]) == set(report["openConflicts"]) | {
        c["address"] for c in report["merge"]["conflicts"]}
    assert {c.name for c in result.report.clusters} == set(CLUSTERS)
    assert "## " in (upgraded.repo.root / REPORT_MD).read_text()


def test_taking_the_new_release_whole_loses_the_vendor_edits(
    tmp_path: Path, git_env: Path, kustomize: Path,
) -> None:
    # What the checks catch: the new release as is, with the same overlays and clusters.
    # The overlay's reference into apps/ (moved to applications/) breaks the prod cluster;
    # its customizations are then judged on the files.
    scenario = next(s for s in ALL if s.base == "v1.10.1")
    repo = build_repo(tmp_path / "deploy", scenario, archives=KUBEFLOW_DIR)
    _, ours, theirs = merge_inputs(repo)
    tree = {p: d for p, d in ours.items() if not p.startswith(V)} | theirs
    ev = evaluate(scenario, write_tree(tmp_path / "theirs", tree))
    assert set(ev.errors) == {"prod"}
    assert "vendor/kubeflow/apps/model-registry/upstream/overlays/db" in ev.errors["prod"]
    assert set(ev.lost) == {c.id for c in scenario.customizations if c.how == "vendor"} | {
        "overlay:extra-entry"}
