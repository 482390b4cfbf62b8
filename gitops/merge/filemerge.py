"""merge_file: one file's three versions in, the merged text and its conflicts out."""

from __future__ import annotations

from dataclasses import dataclass

from gitops.merge.conflict import Conflict, MergeKind, Redaction
from gitops.merge.kustomization import is_kustomization, merge_kustomization
from gitops.merge.text import merge_lines
from gitops.merge.yamlmerge import UnparsableYaml, merge_yaml

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class FileMerge:
    """The merged text of a file (ours kept wherever a conflict is), its conflicts, and the
    kind of merge used (kustomization, yaml, text; text also for YAML that does not parse)."""

    text: str
    conflicts: tuple[Conflict, ...]
    kind: MergeKind

    @property
    def clean(self) -> bool:
        return not self.conflicts


def merge_kind(path: str) -> MergeKind:
    if is_kustomization(path):
        return MergeKind.KUSTOMIZATION
    if path.endswith(YAML_SUFFIXES):
        return MergeKind.YAML
    return MergeKind.TEXT


def merge_file(path: str, base: str, ours: str, theirs: str, *,
               redaction: Redaction | None = None) -> FileMerge:
    """Three-way merge of one text file; `base` is '' for a file both sides added.

    YAML merges resource by resource, kustomizations as keyed sets, anything else (and YAML
    that does not parse on one side, such as a template) line by line.
    """
    red = redaction or Redaction()
    if ours == theirs or base == theirs:
        return FileMerge(ours, (), merge_kind(path))
    if base == ours:
        return FileMerge(theirs, (), merge_kind(path))
    kind = merge_kind(path)
    try:
        if kind is MergeKind.KUSTOMIZATION:
            text, conflicts, kind = merge_kustomization(path, base, ours, theirs, redaction=red)
            return FileMerge(text, tuple(conflicts), kind)
        if kind is MergeKind.YAML:
            text, conflicts, kind = merge_yaml(path, base, ours, theirs, redaction=red)
            return FileMerge(text, tuple(conflicts), kind)
    except UnparsableYaml:
        pass  # a template or broken YAML on one side: lines are all we can merge
    text, conflicts = merge_lines(path, base, ours, theirs, redaction=red)
    return FileMerge(text, tuple(conflicts), MergeKind.TEXT)
