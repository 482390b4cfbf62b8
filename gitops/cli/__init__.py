"""The `stackctl` command line: parse, call one core function, render, return an exit code.

Every module in this package (except those starting with `_`) exports `COMMANDS`, a list of
click commands added to the root group. Command modules import the core lazily, inside the
command, so that `stackctl --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence

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


@click.group(
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


def _register() -> None:
    import gitops.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"gitops.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return run_guarded(cli, args)
