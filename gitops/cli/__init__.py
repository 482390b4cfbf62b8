"""The `stackctl` command line: parse, call one core function, render, return an exit code.

Every module in this package (except those starting with `_`) exports `COMMANDS`, a list of
click commands added to the root group. Command modules import the core lazily, inside the
command, so that `stackctl --help` stays fast; and a command found in the module of its own
name (render in render.py) is run without importing the others, so that a cached
`stackctl render` pays for its own imports only.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any

import click

from gitops import __version__
from gitops.cli._errors import run_guarded

EPILOG = """\b
Exit codes (the same for every command):
  0    success, nothing to report
  1    a finding that needs a person: merge conflicts, plan differences, drift
  2    an error: bad input, kustomize failure, unreachable cluster, failed apply
  3    a bug in stackctl: the message names a log file with the traceback
  130  interrupted
"""


class _Commands(click.Group):
    """The root group, filled from this package's modules when first asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._all = False

    def _module(self, name: str) -> None:
        module = importlib.import_module(f"gitops.cli.{name}")
        for command in getattr(module, "COMMANDS", []):
            self.add_command(command)

    def _register_all(self) -> None:
        if self._all:
            return
        import gitops.cli as pkg

        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                self._module(info.name)
        self._all = True

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name.isidentifier():
            with contextlib.suppress(ImportError):
                self._module(cmd_name)
        if cmd_name not in self.commands:
            self._register_all()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._register_all()
        return super().list_commands(ctx)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(__version__, prog_name="stackctl")
def cli() -> None:
    """Track an upstream stack, upgrade it by three-way merge, render it per cluster,
    apply it with automatic rollback, and check clusters for drift.

    \b
    A typical session:
      stackctl init my-platform --name kubeflow --source https://github.com/kubeflow/manifests
      stackctl vendor import --ref v1.9
      stackctl render --all
      stackctl apply --cluster dev
      stackctl upgrade --vendor v1.10        # then --resolve ADDRESS --theirs, --continue
      stackctl plan --base main --format markdown
      stackctl drift --all

    Try it on a local control plane: make demo (docs/demo.md).
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return run_guarded(cli, args)
