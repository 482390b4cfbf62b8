"""Every outcome of a command becomes a message and a documented exit code."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from gitops.cli import main
from gitops.cli._errors import run_guarded
from gitops.errors import ConfigError, ExitCode


def _group_raising(exc: BaseException) -> click.Group:
    @click.group()
    def g() -> None:
        pass

    @g.command()
    def boom() -> None:
        raise exc

    return g


def test_unknown_command_is_a_usage_error_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "No such command 'no-such-command'" in err
    assert "--help" in err


def test_user_error_prints_one_paragraph_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    g = _group_raising(ConfigError("bad key", path="stack.yaml", line=3, hint="Fix it."))
    assert run_guarded(g, ["boom"]) == 2
    err = capsys.readouterr().err
    assert err == "error: stack.yaml:3: bad key Fix it.\n"


def test_unexpected_exception_writes_a_log_and_exits_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKCTL_CACHE", str(tmp_path))
    g = _group_raising(ZeroDivisionError("division by zero"))
    assert run_guarded(g, ["boom"]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    logs = list((tmp_path / "logs").glob("crash-*.log"))
    assert len(logs) == 1
    assert str(logs[0]) in err
    assert "ZeroDivisionError" in logs[0].read_text()


def test_interrupt_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_guarded(_group_raising(KeyboardInterrupt()), ["boom"]) == 130


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out
