"""Transient answers of the API server are retried, not turned into rejections: a real
forwarding proxy in front of the sandbox's API server answers the first server-side apply
PATCHes with 429 or 503 and Retry-After, as a throttled or restarting server does."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gitops.cluster import ApplyPolicy
from tests.integration.apply_helpers import api, apply, configmap, deployment, ns, revisions
from tests.integration.test_drift_cli import kubeconfig

pytestmark = pytest.mark.integration
__all__ = ["api", "kubeconfig", "ns"]

OK = ApplyPolicy(timeout=60)
APPLY_PATCH = "application/apply-patch+yaml"


class ThrottlingProxy:
    """Plain HTTP in front, TLS with the kubeconfig's client certificate behind: forwards
    every request to the API server, except that it answers the first `count` server-side
    apply PATCHes itself with `status` and `Retry-After: 1`."""

    def __init__(self, kubeconfig: Path, *, status: int, count: int) -> None:
        doc = yaml.safe_load(kubeconfig.read_text())
        cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
        server = urlsplit(cluster["server"])
        self._tmp = tempfile.TemporaryDirectory()
        pem = {k: Path(self._tmp.name) / k for k in ("ca", "cert", "key")}
        for k, field in (("ca", cluster["certificate-authority-data"]),
                         ("cert", user["client-certificate-data"]),
                         ("key", user["client-key-data"])):
            pem[k].write_bytes(base64.b64decode(field))
        context = ssl.create_default_context(cafile=str(pem["ca"]))
        context.load_cert_chain(str(pem["cert"]), str(pem["key"]))
        self.status, self.left, self.answered = status, count, 0
        self.patches = 0
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "PATCH" and self.headers.get("Content-Type") == APPLY_PATCH:
                    with lock:
                        proxy.patches += 1
                        throttle = proxy.left > 0
                        if throttle:
                            proxy.left -= 1
                            proxy.answered += 1
                    if throttle:
                        self._answer(proxy.status, {"Retry-After": "1"}, json.dumps({
                            "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": proxy.status, "reason": "TooManyRequests"
                            if proxy.status == 429 else "ServiceUnavailable",
                            "message": "the server is busy; try again"}).encode())
                        return
                conn = http.client.HTTPSConnection(server.hostname, server.port,
                                                   context=context, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("host", "connection", "authorization")}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    keep = {k: v for k, v in resp.getheaders()
                            if k.lower() in ("content-type", "retry-after", "warning")}
                    self._answer(resp.status, keep, data)
                finally:
                    conn.close()

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._tmp.cleanup()

    def client(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


@pytest.fixture
def proxy_for(kubeconfig: Path) -> Iterator[Any]:
    proxies: list[ThrottlingProxy] = []

    def make(status: int, count: int) -> ThrottlingProxy:
        proxies.append(ThrottlingProxy(kubeconfig, status=status, count=count).__enter__())
        return proxies[-1]

    yield make
    for p in proxies:
        p.__exit__()


@pytest.mark.parametrize("status", [429, 503])
def test_a_server_side_apply_answered_with_a_transient_error_is_retried_and_succeeds(
    proxy_for: Any, ns: str, status: int,
) -> None:
    proxy = proxy_for(status, 3)
    api = proxy.client()
    result = apply(api, ns, [configmap("a", ns), deployment("web", ns)], policy=OK)
    assert result.ok, (result.rejections, result.failure)
    assert result.revision == 1 and result.rollback is None
    assert {o.outcome for o in result.objects} == {"created"}
    assert proxy.answered == 3 and proxy.patches > 3  # every throttled PATCH was sent again
    assert [(r.revision, r.status) for r in revisions(api, ns)] == [(1, "deployed")]
