"""A render's secrets (docs/secrets.md): the SOPS files it reads, found and decrypted before
kustomize runs; the build that needs some of them in clear; the plaintext put into
kustomize's output; and the clear-text Secrets that `secrets.require: sops` forbids.
gitops.render calls this and nothing else of gitops.sops."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops.kustomize import BuildOutput, Inputs, Kustomize, KustomizeBuildError
from gitops.sops.inputs import SecretInputs, find_secret_inputs
from gitops.sops.mirror import install_cleanup, mirrored
from gitops.sops.output import decrypt_output, has_encrypted
from gitops.sops.policy import ClearText, SecretsPolicy, clear_text_secrets

_BYTE_LIST = re.compile(r"\[(?:\d{1,3} ){3,}\d{1,3}\]")


def _reader() -> Callable[[Path], bytes | None]:
    """A file reader that reads each file once (None: unreadable)."""
    seen: dict[Path, bytes | None] = {}

    def read(path: Path) -> bytes | None:
        if path not in seen:
            try:
                seen[path] = path.read_bytes() if path.is_file() else None
            except OSError:
                seen[path] = None
        return seen[path]

    return read


@dataclass(frozen=True)
class RenderSecrets:
    inputs: SecretInputs | None = None  # the SOPS files read, decrypted (MAC checked)
    clear_text: tuple[ClearText, ...] = ()  # secrets in clear, when the policy asks

    @property
    def before_build(self) -> bool:
        return self.inputs is not None and bool(self.inputs.before_build)

    def seal(self, key: str) -> bytes | None:
        """The key of the render's cache entry when kustomize read decrypted files (the
        entry then holds decrypted values); None otherwise."""
        return self.inputs.seal_key(key) if self.inputs is not None and self.before_build \
            else None

    def cacheable(self, seal: bytes | None) -> bool:
        """An entry holding decrypted values is stored only sealed."""
        return not self.before_build or seal is not None

    def build(self, k: Kustomize, path: Path, *, what: str, files: Sequence[str],
              inputs: Inputs) -> BuildOutput:
        """kustomize build of `path`; when files must be read in clear, of a copy of the
        inputs on a RAM-backed filesystem holding them decrypted (gitops.sops.mirror). A
        failure names the original files."""
        if self.inputs is None or not self.before_build:
            return k.build(path, what=what, files=files)
        install_cleanup()
        plain = {f.path: f.decrypted.plaintext for f in self.inputs.before_build}
        with mirrored(inputs.files, inputs.directories, plain) as (tmp, root):
            try:
                return k.build(tmp / os.path.relpath(path, root), what=what, files=files)
            except KustomizeBuildError as e:
                # kustomize read plaintext here: its message may quote a decrypted line
                # (a malformed dotenv entry). Scrubbed now, whoever prints it.
                from gitops.redact import Redactor

                hide = Redactor()
                hide.learn_decrypted(self.inputs.secrets())

                def fix(s: str) -> str:
                    # kustomize also prints a line with invalid UTF-8 as its byte values.
                    s = _BYTE_LIST.sub("[...]", s.replace(str(tmp), str(root)))
                    return hide.text(s, pairs="=")

                raise KustomizeBuildError(
                    what=e.what, command=[fix(c) for c in e.command],
                    exit_code=e.exit_code_of_command, detail=fix(e.detail),
                    file=fix(e.file) if e.file else None) from None

    @contextlib.contextmanager
    def scrubbing(self) -> Iterator[None]:
        """Errors raised inside leave with no decrypted value: a render knows no redactor
        (the command's learns `Rendered.secrets` once the render returns), so an error
        quoting a decrypted line is scrubbed here, before anyone prints it."""
        values = self.secrets()
        try:
            yield
        except Exception as e:
            # A bug's traceback goes to a crash log: its messages, and those of the
            # exceptions it was raised from, are scrubbed as well.
            seen: set[int] = set()
            x: BaseException | None = e
            while values and x is not None and id(x) not in seen:
                seen.add(id(x))
                scrub_error(x, values)
                x = x.__cause__ or x.__context__
            raise

    def plaintext(self, text: str, *, what: str) -> str:
        """An object's text from kustomize (or the cache) with its ENC[...] values
        decrypted."""
        if self.inputs is None or not has_encrypted(text):
            return text
        return decrypt_output(text, self.inputs.replacements(), what=what)

    def names(self) -> tuple[str, ...]:
        return self.inputs.names() if self.inputs is not None else ()

    def secrets(self) -> frozenset[str]:
        return self.inputs.secrets() if self.inputs is not None else frozenset()

    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"{c.file} holds a secret in clear text ({c.what}), and stack.yaml requires "
            f"SOPS (secrets.require: sops): encrypt it with 'sops encrypt -i {c.file}' "
            "(docs/secrets.md)" for c in self.clear_text)


def scrub_error(error: BaseException, values: frozenset[str]) -> None:
    """Replace, in place, every decrypted value in an error's text (its message, hint and
    other text attributes, and the text str() shows) by its mark."""
    from gitops.redact import Redactor

    hide = Redactor(sensitive_patterns=())
    hide.learn_decrypted(values)

    def fix(v: object) -> object:
        if isinstance(v, str):
            return hide.text(v, message=True)
        if isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
            return type(v)(hide.text(x, message=True) for x in v)
        return v

    for k, v in list(vars(error).items()):
        with contextlib.suppress(AttributeError, TypeError):  # a read-only attribute
            setattr(error, k, fix(v))
    with contextlib.suppress(AttributeError, TypeError):
        error.args = tuple(fix(a) for a in error.args)


def render_secrets(inputs: Inputs, base: Path, policy: SecretsPolicy | None) -> RenderSecrets:
    """The render's SOPS files, decrypted, their MACs checked; and, when
    `policy` requires SOPS, the Secrets it reads in clear. Reads the files the
    kustomizations reference (not every file below them)."""
    read = _reader()
    found = find_secret_inputs(inputs.directories, read, base)
    clear: tuple[ClearText, ...] = ()
    if policy is not None and policy.require_sops:
        clear = clear_text_secrets(inputs.directories, read, base, policy)
    return RenderSecrets(found, clear)
