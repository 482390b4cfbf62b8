"""Real Kubeflow upgrades with a platform team's customizations (tests/fixtures/
upgrade_scenarios.py; repos made by tests/fixtures/upgrade_repo.py): v1.3.0 -> v1.4.0,
v1.7.0 -> v1.8.0, v1.10.1 -> v1.10.2, v1.10.2 -> v1.11.0 (remote bases).

Each deployment repo is made for real (`stackctl init`, `vendor import` of the base release
from ../shared's archive folder, one commit of 17 customizations: the eight kinds as vendor
edits and as overlays, and one conflict made on purpose). Then:
- merge_trees on the three trees: only the planned conflict, every customization's text in
  the merged files, local edits at the paths upstream moved their files to;
- `start_upgrade` (the real engine): the same conflict, the reports, and every customization
  present in what the real kustomize renders from the upgraded working tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops import git
from gitops.merge import merge_trees
from gitops.stack import load_stack
from gitops.upgrade import REPORT_JSON, REPORT_MD, start_upgrade
from tests.fixtures.kubeflow import KUBEFLOW_DIR, require_kubeflow
from tests.fixtures.upgrade_repo import (
    build_repo,
    evaluate,
    merge_inputs,
    release_files,
    release_reader,
    write_tree,
)
from tests.fixtures.upgrade_scenarios import CLUSTERS, KINDS, Scenario, V, scenarios

pytestmark = [pytest.mark.kubeflow, pytest.mark.slow]

PAIRS = [("v1.3.0", "v1.4.0"), ("v1.7.0", "v1.8.0"), ("v1.10.1", "v1.10.2"),
         ("v1.10.2", "v1.11.0")]  # v1.11.0: remote bases, fetched from the test mirror
IDS = [f"{a}-to-{b}" for a, b in PAIRS]


@pytest.fixture(scope="module")
def by_base() -> dict[str, Scenario]:
    for pair in PAIRS:
        for version in pair:
            require_kubeflow(version)
    return {s.base: s for s in scenarios(release_reader(KUBEFLOW_DIR))}


@pytest.fixture(params=PAIRS, ids=IDS)
def scenario(request: pytest.FixtureRequest, by_base: dict[str, Scenario]) -> Scenario:
    base, new = request.param
    s = by_base[base]
    assert s.new == new
    return s


def test_every_scenario_makes_each_kind_of_customization_as_vendor_edit_and_as_overlay(
    scenario: Scenario,
) -> None:
    made = {(c.key, c.how) for c in scenario.customizations}
    assert made >= {(k, how) for k in KINDS for how in ("vendor", "overlay")}
    assert ("conflict", "vendor") in made and scenario.conflicts


def test_merge_trees_reports_only_the_planned_conflict_and_local_edits_follow_moves(
    scenario: Scenario, tmp_path: Path, git_env: Path,
) -> None:
    repo = build_repo(tmp_path / "deploy", scenario, archives=KUBEFLOW_DIR)
    base, ours, theirs = merge_inputs(repo)

    m = merge_trees(base, ours, theirs, vendor_prefix=V)

    assert {(c.path, c.field) for c in m.conflicts} == {
        (c.path, c.field) for c in scenario.conflicts}
    assert m.unresolved_references == ()
    for c in scenario.customizations:
        for path, text in c.evidence:
            content = m.files[path].decode()
            assert (text[1:] not in content) if text.startswith("!") else (text in content), \
                (c.id, path)
    for old, new in scenario.followed_moves.items():
        assert old not in m.files, old
        assert m.files[new] != theirs[new], f"the local edit of {old} did not follow to {new}"


def test_v1_7_0_edits_of_istio_1_16_are_carried_to_istio_1_17_which_v1_8_0_uses(
    by_base: dict[str, Scenario], tmp_path: Path, git_env: Path,
) -> None:
    repo = build_repo(tmp_path / "deploy", by_base["v1.7.0"], archives=KUBEFLOW_DIR)
    base, ours, theirs = merge_inputs(repo)
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    old = V + "common/istio-1-16/istio-install/base/patches/service.yaml"
    new = V + "common/istio-1-17/istio-install/base/patches/service.yaml"
    assert m.carried == {old: new}
    assert m.files[new] == m.files[old] == ours[old]


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_upgrade_keeps_every_customization_in_the_rendered_output_with_only_the_planned_conflict(
    pair: tuple[str, str], by_base: dict[str, Scenario], tmp_path: Path, git_env: Path,
    kustomize: Path,
) -> None:
    scenario = by_base[pair[0]]
    repo = build_repo(tmp_path / "deploy", scenario, archives=KUBEFLOW_DIR)
    before = evaluate(scenario, repo.root, use_cache=True)  # the upgrade reuses these renders
    assert (before.lost, dict(before.errors)) == ((), {}), "the scenario's checks are wrong"

    result = start_upgrade(load_stack(repo.root), ref=scenario.new)

    assert result.outcome == "conflicts"
    assert {(c.path, c.field) for c in result.conflicts} == {
        (c.path, c.field) for c in scenario.conflicts}
    assert git.open_repo(repo.root).current_branch() == f"upgrade/kubeflow-{scenario.new}"
    after = evaluate(scenario, repo.root)  # the working tree, rendered by kustomize
    assert dict(after.errors) == {}
    assert after.lost == ()
    assert len(after.kept) == len(scenario.customizations) >= 17
    for old, new in scenario.followed_moves.items():
        assert not (repo.root / old).exists()
        assert (repo.root / new).read_bytes() != release_files(
            KUBEFLOW_DIR, scenario.new)[new]
    report = json.loads((repo.root / REPORT_JSON).read_text())
    assert [c["address"] for c in report["merge"]["conflicts"]] == [
        c.address for c in result.conflicts]
    assert {c.name for c in result.report.clusters} == set(CLUSTERS)
    assert "## " in (repo.root / REPORT_MD).read_text()


def test_taking_the_new_release_whole_loses_the_vendor_edits(
    by_base: dict[str, Scenario], tmp_path: Path, git_env: Path, kustomize: Path,
) -> None:
    # What the checks catch: the new release as is, with the same overlays and clusters.
    # The overlay's reference into apps/ (moved to applications/) breaks the prod cluster;
    # its customizations are then judged on the files.
    scenario = by_base["v1.10.1"]
    repo = build_repo(tmp_path / "deploy", scenario, archives=KUBEFLOW_DIR)
    _, ours, theirs = merge_inputs(repo)
    tree = {p: d for p, d in ours.items() if not p.startswith(V)} | theirs
    ev = evaluate(scenario, write_tree(tmp_path / "theirs", tree))
    assert set(ev.errors) == {"prod"}
    assert "vendor/kubeflow/apps/model-registry/upstream/overlays/db" in ev.errors["prod"]
    assert set(ev.lost) == {c.id for c in scenario.customizations if c.how == "vendor"} | {
        "overlay:extra-entry"}
