"""The three-way merge of an upgrade: base (the vendored release), ours (the deployment
repo), theirs (the new release). Pure functions over text and bytes; no git.

    merge_file(path, base, ours, theirs) -> FileMerge
    merge_trees(base, ours, theirs, vendor_prefix=...) -> TreeMerge
    MergeReport.from_tree(tree).to_markdown() / .to_json()

See docs/merge.md for the rules.
"""

from __future__ import annotations

from gitops.merge.conflict import Conflict, ConflictKind, MergeKind, Redaction
from gitops.merge.filemerge import FileMerge, merge_file
from gitops.merge.moves import Moves, detect_moves
from gitops.merge.references import RewrittenReference, UnresolvedReference
from gitops.merge.report import MergeReport
from gitops.merge.tree import TreeMerge, merge_trees

__all__ = [
    "Conflict",
    "ConflictKind",
    "FileMerge",
    "MergeKind",
    "MergeReport",
    "Moves",
    "Redaction",
    "RewrittenReference",
    "TreeMerge",
    "UnresolvedReference",
    "detect_moves",
    "merge_file",
    "merge_trees",
]
