"""The sandbox's webhook component, a process of its own beside the control plane
(`python -m gitops.sandbox.webhooks STATE_DIR`): the egress proxy (egress.py), the
answerer (answer.py) and the CA injector (inject.py). With it the sandbox runs real stacks
whose webhooks fail closed (Istio, cert-manager, KServe, Katib: `failurePolicy: Fail`)
and whose CRDs convert through webhooks, the way a cluster whose backends run does.

`up` starts it before the API server (which needs its socket) and waits for the socket.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

EGRESS_SOCKET = "egress.sock"
EGRESS_CONFIG = "egress-selector.yaml"
INJECT_EVERY = 1.0  # seconds between the injector's passes


def socket_path(state_dir: Path) -> Path:
    return state_dir / EGRESS_SOCKET


def write_egress_config(state_dir: Path) -> Path:
    """The API server's egress selector configuration, pointing at the proxy's socket."""
    from gitops.sandbox.egress import egress_config

    path = state_dir / EGRESS_CONFIG
    path.write_text(egress_config(socket_path(state_dir)), encoding="utf-8")
    return path


def command(state_dir: Path) -> list[str]:
    return [sys.executable, "-m", "gitops.sandbox.webhooks", str(state_dir)]


def main(state_dir: Path) -> int:
    from gitops.kube import Kube, api_client
    from gitops.sandbox import answer, egress, inject
    from gitops.sandbox.certs import Pki

    pki = Pki(state_dir / "pki")
    work = state_dir / "webhooks"
    work.mkdir(mode=0o700, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    answerer = answer.serve(answer.Minter(pki, work))
    port = int(answerer.server_address[1])
    print(f"answering webhooks on 127.0.0.1:{port}", flush=True)

    kube: Kube | None = None

    def services() -> list[dict[str, object]]:
        return kube.list("v1", "Service") if kube is not None else []

    proxy = egress.serve(socket_path(state_dir), egress.ServiceIndex(services),
                         ("127.0.0.1", port))
    print(f"egress proxy on {socket_path(state_dir)}", flush=True)
    injector: inject.Injector | None = None
    while not stop.is_set():
        kubeconfig = state_dir / "kubeconfig"
        if kube is None and kubeconfig.exists():
            kube = Kube(api_client(kubeconfig))
            injector = inject.Injector(kube, pki.ca_cert.read_bytes())
        if injector is not None:
            n = injector.safe_sync()
            if n:
                print(f"{time.strftime('%H:%M:%S')} injected the sandbox CA into {n} "
                      "object(s)", flush=True)
        stop.wait(INJECT_EVERY)
    proxy.shutdown()
    answerer.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
