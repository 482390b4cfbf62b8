"""The secret values held by a set of files, before (or without) a render: what an
upgrade's merge may quote in a conflict, and what kustomize may quote in an error about a
render that failed (`invalid literal source GEN_PASSWORD:value`).

`plan` learns them from the rendered Secrets; here they are read from the files: Secrets'
`data`/`stringData`, and what a kustomization's `secretGenerator` puts into a Secret (its
`literals`, whole and their values, and the contents of its `envs` and `files`). Only files
that name a Secret (`kind: Secret`) or a secretGenerator at the top level are parsed.

    learn_secret_values(redactor, files)   files: {path relative to one root: content}
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from gitops.errors import UserError
from gitops.redact import Redactor
from gitops.yamlio import load_all_safe

_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# A top-level `kind: Secret` or `secretGenerator:` line: a CRD whose schema only mentions
# Secrets (megabytes in Kubeflow) is not parsed.
_DOCUMENT = re.compile(rb"^---[^\n]*\n", re.MULTILINE)
_HOLDS = re.compile(rb"""^(?:kind:[ \t]*["']?Secret["']?[ \t]*(?:#.*)?\r?$|secretGenerator:)""",
                    re.MULTILINE)
Files = Mapping[str, bytes]


def learn_secret_values(redactor: Redactor, files: Files) -> None:
    """Teach `redactor` the secret values `files` hold (paths relative to one root, POSIX)."""
    for path, data in files.items():
        name = posixpath.basename(path)
        if not (name.endswith((".yaml", ".yml")) or name == "Kustomization"):
            continue
        if _HOLDS.search(data) is None:
            continue
        objs = []
        # Only the documents that hold one: a Kubeflow manifest of megabytes may hold a
        # single small Secret among its CRDs.
        for doc in _DOCUMENT.split(data):
            if _HOLDS.search(doc) is None:
                continue
            try:
                loaded = load_all_safe(doc.decode("utf-8"), path=path)
            except (UserError, UnicodeDecodeError, RecursionError):
                continue  # whoever reads it reports a file that cannot be read
            objs += [d for d in loaded if isinstance(d, dict)]
        redactor.learn(objs)
        if name in _KUSTOMIZATIONS:
            for obj in objs:
                _generated(redactor, files, posixpath.dirname(path), obj)


def _generated(redactor: Redactor, files: Files, folder: str, kust: Mapping[str, Any]
               ) -> None:
    """The values a kustomization's secretGenerator writes into Secrets."""
    generators = kust.get("secretGenerator")
    if not isinstance(generators, list):
        return
    for gen in generators:
        if not isinstance(gen, dict):
            continue
        for literal in gen.get("literals") or ():
            # The whole source too: kustomize quotes it when it is not key=value.
            redactor.add_known(literal)
            _, sep, value = str(literal).partition("=")
            if sep:
                redactor.add_known(value)
        for env in gen.get("envs") or ([gen["env"]] if gen.get("env") else []):
            text = _read(files, folder, str(env))
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep and not key.lstrip().startswith("#"):
                    redactor.add_known(value.strip())
        for spec in gen.get("files") or ():
            # `key=path` or `path`
            rel = str(spec).partition("=")[2] or str(spec)
            text = _read(files, folder, rel)
            if text.strip():
                redactor.add_known(text.strip())


def _read(files: Files, folder: str, rel: str) -> str:
    entry = files.get(posixpath.normpath(posixpath.join(folder, rel)))
    if entry is None:
        return ""
    try:
        return entry.decode("utf-8")
    except UnicodeDecodeError:
        return ""
