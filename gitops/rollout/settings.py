"""How a rollout goes through the clusters: stack.yaml's `rollout:`, overridden by flags.

    rollout:
      maxParallel: 5    # clusters applied at once within a wave
      maxFailures: 0    # failed clusters tolerated; one more stops the rollout
      bakeTime: 0s      # how long a wave must stay healthy before the next one starts
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops.errors import ConfigError

DEFAULT_MAX_PARALLEL = 5  # as Ansible's forks: parallel, yet a bad change reaches few at once


@dataclass(frozen=True)
class RolloutSettings:
    max_parallel: int = DEFAULT_MAX_PARALLEL
    max_failures: int = 0
    bake_time: float = 0.0  # seconds

    def with_flags(self, *, max_parallel: int | None = None, max_failures: int | None = None,
                   bake_time: float | None = None) -> RolloutSettings:
        """These settings with the command's flags (None: not given) taking precedence."""
        return RolloutSettings(
            max_parallel=self.max_parallel if max_parallel is None else max_parallel,
            max_failures=self.max_failures if max_failures is None else max_failures,
            bake_time=self.bake_time if bake_time is None else bake_time,
        )


def load_settings(root: Path) -> RolloutSettings:
    """stack.yaml's `rollout:` (every key optional) as settings."""
    from gitops.cluster import parse_duration
    from gitops.schema import load_config
    from gitops.stack import STACK_FILE, STACK_SPEC

    path = root / STACK_FILE
    cfg = (load_config(path, STACK_SPEC).get("rollout") or {}) if path.is_file() else {}
    settings = RolloutSettings(
        max_parallel=int(cfg.get("maxParallel", DEFAULT_MAX_PARALLEL)),
        max_failures=int(cfg.get("maxFailures", 0)),
        bake_time=parse_duration(cfg.get("bakeTime", 0), what=f"rollout.bakeTime in {path}"),
    )
    if settings.max_parallel < 1:
        raise ConfigError("'rollout.maxParallel' must be 1 or more", path=path,
                          hint="Write the number of clusters applied at once, e.g. "
                               "`maxParallel: 5`.")
    if settings.max_failures < 0:
        raise ConfigError("'rollout.maxFailures' must be 0 or more", path=path,
                          hint="0 stops the rollout at the first failed cluster.")
    return settings
