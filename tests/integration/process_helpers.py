"""A committed deployment repo on the sandbox, and real `stackctl` processes run on it.

    DeployRepo(root, ns, kubeconfig)   clusters/dev applying into namespace `ns`, records in
                                       `ns`; `write(app_yaml)` + `commit()` make a commit
    repo.run(*args) -> Finished        `stackctl ARGS` in a child process, to its end
    repo.start(*args) -> Running       the same, left running: `wait_for(regex)` blocks until
                                       a line of its stderr matches (an event, not a timing:
                                       `limit` only bounds a hang), `signal(sig)`, `finish()`

The child inherits the test's environment (git_env's isolated HOME and git config), so it
finds the same kustomize and caches.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pygit2

from tests.fixtures.gitrepos import commit_all

STACKCTL = [sys.executable, "-m", "gitops"]


@dataclass(frozen=True)
class Finished:
    code: int
    out: str
    err: str

    @property
    def paragraph(self) -> str:
        """The error paragraph that ends stderr, on one line."""
        return " ".join(self.err[self.err.index("error: "):].split()) \
            if "error: " in self.err else ""


class Running:
    def __init__(self, argv: list[str], cwd: Path, prefix: list[str] | None = None) -> None:
        self.proc = subprocess.Popen([*(prefix or []), *argv], cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._out: list[str] = []
        self._seen = threading.Condition()
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self._out.extend(self.proc.stdout)

    def wait_for(self, pattern: str, *, after: int = 0, limit: float = 300) -> int:
        """Block until a stderr line (from line `after` on) matches `pattern`; its index."""
        rx = re.compile(pattern)
        end = time.monotonic() + limit
        with self._seen:
            while True:
                for i in range(after, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i
                if self.proc.poll() is not None and not self._readers[0].is_alive():
                    raise AssertionError(f"stackctl ended (exit {self.proc.returncode}) "
                                         f"before printing /{pattern}/:\n{''.join(self.lines)}")
                if time.monotonic() > end:
                    raise AssertionError(f"no /{pattern}/ in:\n{''.join(self.lines)}")
                self._seen.wait(0.5)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def finish(self, limit: float = 300) -> Finished:
        code = self.proc.wait(limit)
        for t in self._readers:
            t.join(10)
        return Finished(code, "".join(self._out), "".join(self.lines))


class DeployRepo:
    """A deployment repo whose cluster `dev` applies into `ns` on the sandbox."""

    def __init__(self, root: Path, ns: str, kubeconfig: Path, *,
                 cluster_yaml: str = "") -> None:
        self.root, self.ns, self.kubeconfig = root, ns, kubeconfig
        self.cluster = root / "clusters" / "dev"
        self.cluster.mkdir(parents=True, exist_ok=True)
        (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
        (self.cluster / "cluster.yaml").write_text(
            f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\n"
            + (cluster_yaml or "apply:\n  timeout: 5m\n"))
        (self.cluster / "kustomization.yaml").write_text(
            f"namespace: {ns}\nresources: [app.yaml]\n")
        self.repo = pygit2.init_repository(str(root), initial_head="main")

    def write(self, app_yaml: str) -> None:
        (self.cluster / "app.yaml").write_text(app_yaml)

    def commit(self, message: str = "change") -> str:
        return commit_all(self.repo, message)

    def run(self, *args: str, prefix: list[str] | None = None) -> Finished:
        return self.start(*args, prefix=prefix).finish()

    def start(self, *args: str, prefix: list[str] | None = None) -> Running:
        return Running([*STACKCTL, *args], self.root, prefix)


def deployment_yaml(name: str, image: str, *, fail: bool = False) -> str:
    from gitops.sandbox import FAIL_LABEL

    labels = f"{{app: {name}{', ' + FAIL_LABEL + ': ' + repr('true') if fail else ''}}}"
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {labels}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
"""


def configmap_yaml(name: str, value: str = "v") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: {value}}}\n"


def docs(*parts: str) -> str:
    return "---\n".join(parts)
