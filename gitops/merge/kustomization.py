"""kustomization.yaml merged as keyed sets, so that a local entry survives an upstream edit
of the same list (kpt's resource merge replaces such lists whole and loses it: kpt#431).

- resources, components, bases, crds, configurations, generators, transformers, validators,
  patchesStrategicMerge, buildMetadata: sets of values;
- patches, patchesJson6902: by `path`, else by target plus patch content;
- images, replicas, configMapGenerator, secretGenerator, helmCharts, vars: by name; inside a
  generator, `literals` by key (the text before `=`), `files` and `envs` by value;
- labels: by their options (includeSelectors, ...), their `pairs` merged by key;
- commonLabels, commonAnnotations and other mappings: key by key; other scalars as scalars.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from gitops.merge.conflict import Conflict, MergeKind, Redaction
from gitops.merge.fields import KeyFn, canonical, kubernetes_list_key, plain
from gitops.merge.yamlmerge import merge_documents

KUSTOMIZATION_NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})

VALUE_SETS = frozenset({
    "resources", "components", "bases", "crds", "configurations", "generators",
    "transformers", "validators", "patchesStrategicMerge", "buildMetadata",
})
BY_NAME = frozenset({
    "images", "replicas", "configMapGenerator", "secretGenerator", "helmCharts", "vars",
})
GENERATORS = ("configMapGenerator", "secretGenerator")


def is_kustomization(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in KUSTOMIZATION_NAMES


def _value(item: Any) -> Hashable | None:
    return None if isinstance(item, Mapping | list) else canonical(item)


def _patch_key(item: Any) -> Hashable | None:
    if not isinstance(item, Mapping):
        return None
    if "path" in item:
        return ("path", str(item["path"]))
    return ("target", canonical(item.get("target")), canonical(item.get("patch")))


def _by_name(item: Any) -> Hashable | None:
    if not isinstance(item, Mapping) or "name" not in item:
        return None
    return (str(item["name"]), str(item.get("namespace") or ""))


def _literal_key(item: Any) -> Hashable | None:
    if isinstance(item, Mapping | list) or item is None:
        return None
    return str(item).split("=", 1)[0].strip()


def _label_options(item: Any) -> Hashable | None:
    if not isinstance(item, Mapping):
        return None
    return canonical({k: v for k, v in item.items() if k != "pairs"})


def kustomization_list_key(path: tuple[str, ...], name: str, items: list[Any]) -> KeyFn | None:
    """The key of a list in a kustomization (see the module docstring)."""
    if not path:
        if name in VALUE_SETS:
            return _value
        if name in ("patches", "patchesJson6902"):
            return _patch_key
        if name in BY_NAME:
            return _by_name
        if name == "labels":
            return _label_options
    elif len(path) == 1 and path[0].split("[", 1)[0] in GENERATORS:
        if name == "literals":
            return _literal_key
        if name in ("files", "envs"):
            return _value
    return kubernetes_list_key(path, name, items)


def _secret_field(fpath: str) -> bool:
    return fpath.startswith("secretGenerator")


def merge_kustomization(path: str, base: str, ours: str, theirs: str, *,
                        redaction: Redaction) -> tuple[str, list[Conflict], MergeKind]:
    m = merge_documents(path, base, ours, theirs, redaction=redaction,
                        list_key=kustomization_list_key, resources=False,
                        secret_field=_secret_field)
    return m.text, m.conflicts, MergeKind.KUSTOMIZATION


def references(data: Any) -> list[str]:
    """Every path-like reference a kustomization makes (for move rewriting and checks)."""
    if not isinstance(data, Mapping):
        return []
    refs: list[str] = []
    for f in ("resources", "components", "bases", "crds", "configurations", "generators",
              "transformers", "validators", "patchesStrategicMerge"):
        for v in data.get(f) or []:
            if isinstance(v, str) and "\n" not in v:
                refs.append(v)
    for f in ("patches", "patchesJson6902", "replacements"):
        for v in data.get(f) or []:
            if isinstance(v, Mapping) and isinstance(v.get("path"), str):
                refs.append(str(v["path"]))
    for f in GENERATORS:
        for g in data.get(f) or []:
            if not isinstance(g, Mapping):
                continue
            for v in g.get("files") or []:
                if isinstance(v, str):
                    refs.append(v.split("=", 1)[-1])
            for v in [*(g.get("envs") or []), g.get("env")]:
                if isinstance(v, str):
                    refs.append(v)
    openapi = data.get("openapi")
    if isinstance(openapi, Mapping) and isinstance(openapi.get("path"), str):
        refs.append(str(openapi["path"]))
    return [str(plain(r)) for r in refs if _is_local(r)]


def _is_local(ref: str) -> bool:
    return not ("://" in ref or ref.startswith(("github.com/", "git@", "https:", "http:"))
                or "?ref=" in ref or ref.startswith("/"))
