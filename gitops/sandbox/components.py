"""The command lines of the sandbox's components, with why each flag is there.

Mostly controller-runtime envtest's flags for etcd and kube-apiserver, plus what the
controller manager, the scheduler and kwok need to run on loopback with the same PKI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitops.sandbox.certs import Pki

SERVICE_CIDR = "10.96.0.0/12"
POD_CIDR = "10.244.0.0/16"  # kwok hands out pod IPs from here: room for thousands of pods
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    def named(self) -> dict[str, int]:
        return {"etcd client": self.etcd_client, "etcd peer": self.etcd_peer,
                "kube-apiserver": self.apiserver,
                "kube-controller-manager": self.controller_manager,
                "kube-scheduler": self.scheduler}


def etcd(binary: Path, *, data_dir: Path, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(binary), "--name=sandbox", f"--data-dir={data_dir}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        # etcd binds a peer port even for one member; pin it to loopback too.
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=sandbox={peer}",
        # A throw-away store: skipping fsync makes writes several times faster (envtest).
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


# The machine's proxy settings must not reach the control plane: the API server's webhook
# client honours HTTPS_PROXY (Go's ProxyFromEnvironment) and sent the calls to the
# sandbox's Services to an outside proxy (an x509 error naming the proxy's host).
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                   "all_proxy")
NO_PROXY = f"127.0.0.1,localhost,::1,{SERVICE_CIDR},{POD_CIDR},.svc,.cluster.local"


def environment(base: Mapping[str, str]) -> dict[str, str]:
    """The components' environment: `base` without proxy settings, and NO_PROXY naming the
    sandbox's own addresses (for anything that reads it despite the above)."""
    env = {k: v for k, v in base.items() if k not in PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = NO_PROXY
    return env


def apiserver(binary: Path, *, pki: Pki, ports: Ports,
              egress_config: Path | None = None) -> list[str]:
    # The cluster network (Services behind webhooks and aggregated APIs) through the
    # webhook component's proxy (gitops/sandbox/egress.py): ClusterIPs route nowhere here.
    egress = [f"--egress-selector-config-file={egress_config}"] if egress_config else []
    return [
        str(binary), *egress,
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1", f"--secure-port={ports.apiserver}",
        # Loopback is refused as the kubernetes Service's endpoint, and without an advertise
        # address the server looks for a default route; 'none' skips the endpoint reconciler.
        "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
        # Client certificates signed by our CA authenticate; O=system:masters is admin.
        f"--client-ca-file={pki.ca_cert}",
        # The front-proxy settings kubeadm sets: the controller manager and scheduler read
        # them from the extension-apiserver-authentication ConfigMap and log an error
        # several times a second while requestheader-client-ca-file is missing.
        f"--requestheader-client-ca-file={pki.ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        # Priority and fairness queues requests per flow: nothing to protect in a one-user
        # sandbox, and it would throttle the benchmarks' bursts of concurrent applies.
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager(binary: Path, *, kubeconfig: Path, pki: Pki,
                       ports: Ports) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        # Delegated authn/authz of its own /healthz; without them it logs warnings only,
        # with them the health endpoint is served like a real cluster's.
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1", f"--secure-port={ports.controller_manager}",
        # One instance: no lease to acquire before the controllers start.
        "--leader-elect=false",
        # ServiceAccount token Secrets/projected tokens carry this CA; tokens are signed
        # with the key the API server verifies.
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}",
        # kwok nodes have no CIDR allocator to wait for.
        "--allocate-node-cidrs=false",
        "--profiling=false",
        "--v=1",
    ]


def scheduler(binary: Path, *, kubeconfig: Path, ports: Ports) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1", f"--secure-port={ports.scheduler}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def kwok(binary: Path, *, kubeconfig: Path, stages: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        # Without stages kwok exits with "no stages found"; ours are kwok's fast set plus
        # the failure stage (gitops/sandbox/stages.py).
        f"--config={stages}",
        # Only the Node objects the sandbox creates (real nodes of a borrowed cluster, were
        # this ever pointed at one, are left alone).
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        # Without leases kwok nodes go NotReady after the node monitor grace period.
        "--node-lease-duration-seconds=40",
        f"--cidr={POD_CIDR}",
        "--node-ip=127.0.0.1",
    ]
