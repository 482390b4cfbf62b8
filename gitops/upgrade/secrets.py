"""The secret values an upgrade's merge may meet, taught to the run's redactor before the
merge records any conflict (conflict values go to stdout, `--status`, the markers written
into files, report.md and report.json).

`plan` learns them from the rendered Secrets; the merge works on the files, before any
render, so they are read from the three trees: the Secrets' `data`/`stringData`, and what a
kustomization's `secretGenerator` puts into a Secret (its `literals`, and the contents of
its `envs` and `files`). Only files that name a Secret or a secretGenerator are parsed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from gitops.errors import UserError
from gitops.git import Files
from gitops.redact import Redactor
from gitops.yamlio import load_all_safe

_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def learn_secrets(redactor: Redactor, trees: Iterable[Files]) -> None:
    for files in trees:
        for path, (_, data) in files.items():
            name = posixpath.basename(path)
            if not (name.endswith((".yaml", ".yml")) or name == "Kustomization"):
                continue
            if b"Secret" not in data and b"secretGenerator" not in data:
                continue
            try:
                docs = load_all_safe(data.decode("utf-8"), path=path)
            except (UserError, UnicodeDecodeError, RecursionError):
                continue  # the merge reports a file it cannot read
            objs = [d for d in docs if isinstance(d, dict)]
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
        return entry[1].decode("utf-8")
    except UnicodeDecodeError:
        return ""
