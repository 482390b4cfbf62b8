"""merge_file on other text files: diff3 line merge, conflicts keep ours, no markers."""

from __future__ import annotations

from gitops.merge import ConflictKind, MergeKind, Redaction, merge_file

BASE = "A=1\nENABLE_CULLING=false\nB=2\nC=3\nD=4\n"


def test_non_overlapping_changes_on_both_sides_merge() -> None:
    ours = BASE.replace("ENABLE_CULLING=false", "ENABLE_CULLING=true")
    theirs = BASE + "CLUSTER_DOMAIN=cluster.local\n"
    m = merge_file("params.env", BASE, ours, theirs)
    assert (m.text, m.conflicts, m.kind) == (
        "A=1\nENABLE_CULLING=true\nB=2\nC=3\nD=4\nCLUSTER_DOMAIN=cluster.local\n", (),
        MergeKind.TEXT)


def test_overlapping_different_changes_keep_ours_and_record_the_line_range() -> None:
    ours = BASE.replace("B=2\nC=3\n", "B=20\nC=30\n")
    theirs = BASE.replace("C=3\n", "C=300\n").replace("A=1", "A=0")
    m = merge_file("app.properties", BASE, ours, theirs)
    assert m.text == "A=0\nENABLE_CULLING=false\nB=20\nC=30\nD=4\n"
    assert "<<<<<<<" not in m.text
    (c,) = m.conflicts
    assert (c.kind, c.field, c.lines, c.base, c.ours, c.theirs) == (
        ConflictKind.BOTH_CHANGED, "lines 3-4", (3, 4), "B=2\nC=3\n", "B=20\nC=30\n",
        "B=2\nC=300\n")
    assert c.address == "app.properties::lines 3-4"


def test_identical_changes_on_both_sides_are_no_conflict() -> None:
    both = BASE.replace("D=4", "D=5")
    m = merge_file("x.conf", BASE, "E=1\n" + both, both)
    assert (m.text, m.conflicts) == ("E=1\n" + both, ())


def test_insertions_at_the_same_place_conflict() -> None:
    m = merge_file("x.conf", BASE, BASE + "O=1\n", BASE + "T=1\n")
    assert m.text == BASE + "O=1\n"
    (c,) = m.conflicts
    assert (c.field, c.lines, c.base, c.ours, c.theirs) == ("line 6", (6, 6), "", "O=1\n",
                                                            "T=1\n")


def test_conflicts_in_files_named_as_secrets_show_hashes_only() -> None:
    red = Redaction(salt=b"k")
    m = merge_file("secret_params.env", "PW=a\n", "PW=ours-secret\n", "PW=theirs-secret\n",
                   redaction=red)
    (c,) = m.conflicts
    assert (c.base, c.ours, c.theirs) == (red.mark("PW=a\n"), red.mark("PW=ours-secret\n"),
                                          red.mark("PW=theirs-secret\n"))
