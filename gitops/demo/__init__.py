"""The whole mission on the local sandbox, end to end (`make demo`, `python -m gitops.demo`).

    run_demo(progress=callback, workdir=None, keep=False) -> DemoResult

1. start the sandbox; 2. create a throw-away deployment repo from the example stack;
3. apply both clusters; 4. upgrade v1.3.0 -> v1.4.1 and resolve the one conflict;
5. plan the upgrade; 6. roll it out, first broken on purpose (automatic rollback);
7. detect and heal drift; 8. stop the sandbox, leaving nothing running.

Every stackctl step runs the real CLI in a subprocess in the throw-away repo; every step checks
its outcome and raises `gitops.errors.DemoError` (naming the step) when it differs. The sandbox
is stopped whatever happens, Ctrl-C included. Progress arrives as `gitops.demo.events` values.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from gitops.demo import steps
from gitops.demo.core import Demo, DemoResult
from gitops.demo.events import Event, Note, Progress
from gitops.demo.runner import Runner
from gitops.paths import project_root

STEPS = (steps.start_sandbox, steps.create_repo, steps.apply_both, steps.upgrade, steps.plan,
         steps.rollout, steps.drift, steps.stop)

__all__ = ["STEPS", "DemoResult", "Event", "Progress", "run_demo"]


def run_demo(*, progress: Progress, workdir: Path | None = None, keep: bool = False,
             project: Path | None = None) -> DemoResult:
    """Run the eight steps in a fresh temp folder (or `workdir`, which must be empty or
    absent). The folder is removed after a successful run unless `keep` or `workdir` is
    given; after a failure it is kept for its logs and repo. Raises DemoError for a step
    whose outcome differs from what it checks."""
    began = time.monotonic()
    if workdir is None:
        root = Path(tempfile.mkdtemp(prefix="stackctl-demo-"))
    else:
        root = workdir.expanduser().absolute()
        root.mkdir(parents=True, exist_ok=True)
        keep = True
    demo = Demo(project=project or project_root(), workdir=root, progress=progress,
                runner=Runner(logs=root / "logs", progress=progress))
    ok = False
    try:
        for step in STEPS:
            step(demo)
        ok = True
    finally:
        if demo.sandbox_started or demo.live is not None:
            demo.stop_after_failure()  # a failed or interrupted run
        if not ok:
            progress(Note(f"kept {root} (the deployment repo, command logs in logs/, "
                          "sandbox logs in sandbox/logs/)"))
    kept = keep
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return DemoResult(workdir=root, repo=demo.repo, kept=kept,
                      seconds=time.monotonic() - began, steps=tuple(demo.timings))
