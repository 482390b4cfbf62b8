"""The one error hierarchy of stackctl, and the exit codes every command shares.

    StackctlError                 root; never raised directly
    ├── UserError                 bad input or a failed operation the user can act on (exit 2)
    │   ├── ConfigError           stack.yaml, cluster.yaml, lock: schema and parse errors
    │   ├── YamlError             a YAML file that does not parse
    │   ├── GitError              a repository operation failed (pygit2 translated)
    │   ├── SourceError           an upstream source cannot be read or a ref does not resolve
    │   │   └── RemoteError       a remote base cannot be fetched, or differs from its pin
    │   ├── DirtyWorktreeError    an operation needs a clean working tree
    │   ├── KustomizeError        the kustomize binary failed or is missing
    │   ├── RenderError           a render produced objects stackctl cannot accept
    │   ├── SecretsError          an encrypted (SOPS) file cannot be decrypted or was tampered with
    │   ├── SandboxError          the local control plane cannot be built, started or reached
    │   ├── ClusterError          a cluster cannot be reached or refused a request
    │   ├── ApplyError            an apply failed (after rollback, when there was one)
    │   ├── UpgradeError          an upgrade cannot start, resolve, continue or abort
    │   ├── MachineError          the machine refused: a full disk, a read-only file system,
    │   │                         no permission, a lock file left by another process
    │   └── DemoError             a step of `make demo` did not do what it should
    └── (unexpected exceptions are bugs: exit 3 with a log file)

Findings that need a person (merge conflicts, plan differences, drift) are not errors:
commands return ExitCode.FINDING for them.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    FINDING = 1  # merge conflicts, differences, drift: a person should look
    ERROR = 2  # bad input, kustomize failure, unreachable cluster, failed apply
    INTERNAL = 3  # a bug in stackctl; the traceback is in a log file
    INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, as a shell reports it
    TERMINATED = 143  # SIGTERM (a CI job cancelled): 128 + 15


class StackctlError(Exception):
    """Root of every error stackctl raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR


class UserError(StackctlError):
    """An error with a message that says what happened and what to do next."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class ConfigError(UserError):
    """A configuration file (stack.yaml, cluster.yaml, lock) is missing or invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, hint=hint)


class YamlError(ConfigError):
    """A YAML document does not parse."""


class GitError(UserError):
    """A git operation failed."""


class FetchTooLargeError(GitError):
    """A git fetch received more than its limit allows and was stopped."""

    def __init__(self, url: str, received: int, limit: int) -> None:
        super().__init__(f"the fetch of {url} passed {limit:,} bytes")
        self.url = url
        self.received = received
        self.limit = limit


class SourceError(UserError):
    """An upstream source cannot be read, or a ref does not resolve in it."""


class RemoteError(SourceError):
    """A remote base a kustomization pulls cannot be fetched (through its mirror), its ref
    does not resolve, or what was fetched differs from the pin in stackctl.lock."""


class DirtyWorktreeError(UserError):
    """The working tree has uncommitted changes that the operation would touch."""


class KustomizeError(UserError):
    """The kustomize binary is missing, too old, or failed."""


class RenderError(UserError):
    """A render produced output stackctl cannot accept (duplicates, objects without identity)."""


class SecretsError(UserError):
    """A SOPS-encrypted file cannot be decrypted: no key of the environment opens it, the
    `sops` program its keys need is missing, or it was modified after it was encrypted."""


class SandboxError(UserError):
    """The local control plane cannot be built, started, reached or stopped."""


class ClusterError(UserError):
    """A cluster cannot be reached, or the API server refused a request."""


class ApplyError(UserError):
    """An apply failed; the message says what was rolled back."""


class VendorEditedError(UserError):
    """vendor/<name>/ has local edits, so a plain import would lose them (use upgrade)."""


class UpgradeError(UserError):
    """An upgrade cannot start (one is in progress), resolve (unknown address), continue or
    abort; the message says which command to run instead."""


class MachineError(UserError):
    """The machine, or another process, refused an operation: a full disk, a read-only file
    system, missing permission, a git lock file (gitops.oserrors builds these). `remedy`
    says what to do about it; the hint goes on with what to run then."""

    def __init__(self, message: str, *, remedy: str,
                 then: str = "run the command again") -> None:
        self.remedy = remedy
        super().__init__(message, hint=f"{remedy}, then {then}.")

    def then(self, what: str) -> MachineError:
        """The same error, advising to run `what` (instead of the same command) after."""
        return MachineError(self.message, remedy=self.remedy, then=what)


class DemoError(UserError):
    """A step of the demo (`make demo`) did not have the outcome it checks for."""

    def __init__(self, step: int, title: str, message: str, *, hint: str | None = None) -> None:
        self.step = step
        self.title = title
        super().__init__(f"step {step} ({title}) failed: {message}", hint=hint)
