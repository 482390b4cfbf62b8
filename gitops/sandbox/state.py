"""The sandbox's state dir and the state file recording what `up` started."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops.errors import SandboxError
from gitops.paths import cache_dir
from gitops.sandbox.processes import Proc

STATE_FILE = "state.json"


def default_state_dir(name: str = "default") -> Path:
    """~/.cache/stackctl/sandbox-state/<name> (honours $STACKCTL_CACHE, $XDG_CACHE_HOME)."""
    return cache_dir() / "sandbox-state" / name


@dataclass(frozen=True)
class Layout:
    """Where things live in a state dir."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stages(self) -> Path:
        return self.root / "kwok-stages.yaml"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


@dataclass
class State:
    """What a running (or crashed) sandbox consists of; saved after every started process so
    that a killed `up` still leaves a record `down` can stop."""

    name: str
    server: str
    kubeconfig: str
    bin_dir: str
    ports: dict[str, int]
    storage_classes: list[str]
    procs: list[Proc] = field(default_factory=list)
    ready: bool = False

    def save(self, layout: Layout) -> None:
        data: dict[str, Any] = asdict(self)
        data["procs"] = [{**asdict(p), "argv": list(p.argv), "log": str(p.log)}
                         for p in self.procs]
        tmp = layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(layout.state_file)

    @classmethod
    def load(cls, layout: Layout) -> State | None:
        try:
            raw = json.loads(layout.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise SandboxError(
                f"the sandbox state file {layout.state_file} cannot be read: {e}.",
                hint=f"If no sandbox runs from {layout.root}, delete that folder.") from e
        try:
            procs = [Proc(p["name"], int(p["pid"]), int(p["start_time"]), tuple(p["argv"]),
                          Path(p["log"])) for p in raw.pop("procs")]
            return cls(**raw, procs=procs)
        except (KeyError, TypeError, ValueError) as e:
            raise SandboxError(
                f"the sandbox state file {layout.state_file} is not one stackctl wrote "
                f"({type(e).__name__}: {e}).",
                hint=f"If no sandbox runs from {layout.root}, delete that folder.") from e
