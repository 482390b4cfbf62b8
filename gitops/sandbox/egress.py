"""The sandbox API server's way to the cluster's Services: an HTTP CONNECT proxy on a unix
socket, named in the API server's egress selector configuration for the `cluster` network
(webhooks and conversion webhooks served by a Service, aggregated APIs).

A Service's ClusterIP routes nowhere on the sandbox (no kube-proxy, and kwok's pods run
nothing); the API server asks this proxy for `CONNECT <clusterIP>:<port>` and it connects
to, for the Service with that ClusterIP:
- the address in its annotation `sandbox.stackctl.dev/backend: 127.0.0.1:PORT`, a real
  backend a user (or a test) runs on this machine: a webhook of their own, say;
- else the sandbox's answerer (answer.py), which allows every admission and converts.
It never connects anywhere but loopback: a Service address outside the sandbox's range,
or an unknown one, is refused with 502.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BACKEND_ANNOTATION = "sandbox.stackctl.dev/backend"
Lookup = Callable[[str], dict[str, Any] | None]


def backend_of(service: dict[str, Any] | None, answerer: tuple[str, int]
               ) -> tuple[str, int] | None:
    """Where a CONNECT to a Service goes: its loopback backend annotation, else the
    answerer; None for no Service or an annotation that is not a loopback address."""
    if service is None:
        return None
    ann = (service.get("metadata") or {}).get("annotations") or {}
    target = str(ann.get(BACKEND_ANNOTATION) or "")
    if not target:
        return answerer
    host, _, port = target.rpartition(":")
    try:
        if not ipaddress.ip_address(host.strip("[]") or "invalid").is_loopback:
            return None
        return host.strip("[]"), int(port)
    except ValueError:
        return None


class ServiceIndex:
    """Services by ClusterIP, listed again (at most once a second) when an address is not
    known yet: a webhook's Service is usually created a moment before it is called."""

    def __init__(self, list_services: Callable[[], list[dict[str, Any]]]) -> None:
        self._list = list_services
        self._by_ip: dict[str, dict[str, Any]] = {}
        self._listed = 0.0
        self._lock = threading.Lock()

    def find(self, ip: str) -> dict[str, Any] | None:
        with self._lock:
            if ip not in self._by_ip and time.monotonic() - self._listed > 1.0:
                self._by_ip = {str((s.get("spec") or {}).get("clusterIP")): s
                               for s in self._list()}
                self._listed = time.monotonic()
            return self._by_ip.get(ip)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def make_handler(services: ServiceIndex, answerer: tuple[str, int]
                 ) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline(4096).decode("latin-1").split()
            while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                pass  # the request's headers
            if len(line) < 2 or line[0] != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host = line[1].rpartition(":")[0]
            target = backend_of(services.find(host.strip("[]")), answerer)
            if target is None:
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            try:
                upstream = socket.create_connection(target, timeout=10)
            except OSError:
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            upstream.settimeout(None)
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            back = threading.Thread(target=_pipe, args=(upstream, self.connection),
                                    daemon=True)
            back.start()
            _pipe(self.connection, upstream)
            back.join()
            upstream.close()

    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(path: Path, services: ServiceIndex, answerer: tuple[str, int]) -> _Server:
    """Listen on the unix socket `path` (replaced) in a daemon thread."""
    path.unlink(missing_ok=True)
    server = _Server(str(path), make_handler(services, answerer))
    path.chmod(0o600)
    threading.Thread(target=server.serve_forever, daemon=True, name="egress").start()
    return server


def egress_config(socket_path: Path) -> str:
    """The API server's --egress-selector-config-file: the cluster network through the
    proxy; the control plane and etcd as usual (direct)."""
    return (
        "apiVersion: apiserver.k8s.io/v1beta1\n"
        "kind: EgressSelectorConfiguration\n"
        "egressSelections:\n"
        "- name: cluster\n"
        "  connection:\n"
        "    proxyProtocol: HTTPConnect\n"
        "    transport:\n"
        "      uds:\n"
        f"        udsName: {socket_path}\n"
    )
