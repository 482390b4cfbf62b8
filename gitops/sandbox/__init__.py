"""The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok built from Go modules (`make sandbox`), run on loopback from a state dir.

    up(state_dir, name=..., storage_classes=..., progress=...) -> SandboxInfo
    down(state_dir, name=...) -> DownResult
    status(state_dir, name=...) -> SandboxStatus
    env(state_dir, name=...) -> dict[str, str]

A pod labelled `sandbox.stackctl.dev/fail: "true"` (FAIL_LABEL) never becomes ready; one
labelled `sandbox.stackctl.dev/ready-after: 20s` (READY_AFTER_LABEL) becomes ready that long
after it was scheduled.
"""

from __future__ import annotations

from gitops.sandbox.control import (
    ComponentStatus,
    DownResult,
    SandboxInfo,
    SandboxStatus,
    down,
    env,
    status,
    up,
)
from gitops.sandbox.stages import FAIL_LABEL, READY_AFTER_LABEL, READY_JITTER_LABEL
from gitops.sandbox.state import default_state_dir

__all__ = [
    "FAIL_LABEL",
    "READY_AFTER_LABEL",
    "READY_JITTER_LABEL",
    "ComponentStatus",
    "DownResult",
    "SandboxInfo",
    "SandboxStatus",
    "default_state_dir",
    "down",
    "env",
    "status",
    "up",
]
