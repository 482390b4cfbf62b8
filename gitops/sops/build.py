"""A render's SOPS files: found and decrypted before kustomize runs, and the build that needs
some of them in clear (docs/secrets.md)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gitops.kustomize import BuildOutput, Inputs, Kustomize, KustomizeBuildError
from gitops.sops.formats import may_be_sops
from gitops.sops.inputs import SecretInputs, find_secret_inputs
from gitops.sops.mirror import install_cleanup, mirrored


def _by_path(inputs: Inputs, contents: Sequence[tuple[str, bytes | None]]
             ) -> dict[Path, bytes | None]:
    """The input files' contents by absolute path (`contents` is keyed like
    inputs.relative())."""
    return {p: data for (_, p), (_, data) in zip(inputs.relative(), contents, strict=True)}


def find_render_secrets(inputs: Inputs, contents: Sequence[tuple[str, bytes | None]],
                        base: Path) -> SecretInputs | None:
    """The SOPS files the render reads, decrypted, their MACs checked; None without any.
    Their values are learned by the run's redactor at once, so that even an error quoting
    one is scrubbed."""
    if not any(data is not None and may_be_sops(data) for _, data in contents):
        return None
    found = find_secret_inputs(inputs.directories, _by_path(inputs, contents), base)
    if found is not None:
        from gitops.redact import run_redactor

        run_redactor().learn_decrypted(found.secrets())
    return found


def build_decrypted(k: Kustomize, path: Path, *, what: str, files: Sequence[str],
                    inputs: Inputs, contents: Sequence[tuple[str, bytes | None]],
                    secret_inputs: SecretInputs) -> BuildOutput:
    """kustomize build of a copy of the inputs on a RAM-backed filesystem in which the SOPS
    files kustomize must read in clear are decrypted (gitops.sops.mirror); a failure names
    the original files."""
    install_cleanup()
    plain = {f.path: f.decrypted.plaintext for f in secret_inputs.before_build}
    with mirrored(inputs.files, inputs.directories, _by_path(inputs, contents),
                  plain) as (tmp, root):
        try:
            return k.build(tmp / os.path.relpath(path, root), what=what, files=files)
        except KustomizeBuildError as e:
            def fix(s: str) -> str:
                return s.replace(str(tmp), str(root))

            raise KustomizeBuildError(
                what=e.what, command=[fix(c) for c in e.command],
                exit_code=e.exit_code_of_command, detail=fix(e.detail),
                file=fix(e.file) if e.file else None) from None
