"""The upgrade engine: `stackctl upgrade --vendor REF` and its --resolve, --continue,
--abort and --status. See docs/upgrade.md.

    start_upgrade(stack, ref=..., source=None, branch=None, dry_run=False, progress=None)
        -> UpgradeResult
    resolve(stack, address=..., choice='ours'|'theirs'|'mark') -> Resolution
    continue_upgrade(stack) -> UpgradeResult
    abort_upgrade(stack) -> UpgradeState
    upgrade_status(stack) -> UpgradeState | None
"""

from __future__ import annotations

from gitops.upgrade.common import UpgradeResult
from gitops.upgrade.engine import start_upgrade
from gitops.upgrade.finish import continue_upgrade
from gitops.upgrade.report import ClusterSummary, UpgradeReport
from gitops.upgrade.resolve import Resolution, resolve
from gitops.upgrade.state import (
    REPORT_JSON,
    REPORT_MD,
    STATE_FILE,
    ConflictRecord,
    UpgradeState,
)
from gitops.upgrade.undo import abort_upgrade, upgrade_status

__all__ = [
    "REPORT_JSON",
    "REPORT_MD",
    "STATE_FILE",
    "ClusterSummary",
    "ConflictRecord",
    "Resolution",
    "UpgradeReport",
    "UpgradeResult",
    "UpgradeState",
    "abort_upgrade",
    "continue_upgrade",
    "resolve",
    "start_upgrade",
    "upgrade_status",
]
