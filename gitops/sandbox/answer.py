"""The sandbox's stand-in for webhook backends: an HTTPS server that answers every
admission review "allowed" and converts every custom resource by its apiVersion.

kwok's pods run nothing, so on the sandbox no Service has a backend: without a stand-in
every webhook with `failurePolicy: Fail` (Istio's sidecar injector, cert-manager's,
KServe's, Katib's...) refuses what it admits, and a CRD converting through a webhook serves
nothing. The API server reaches this server for every Service through the egress proxy
(egress.py); it presents, for the name the API server asks for (`<svc>.<ns>.svc`, by SNI),
a certificate of the sandbox's CA, which the injector (inject.py) puts into the webhooks'
`caBundle`s as cert-manager's cainjector and istiod do on a real cluster.

It mutates nothing: an admission answer carries no patch; a conversion only sets
`apiVersion`, which is what a conversion between versions with the same schema does.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gitops.sandbox.certs import Pki


class Minter:
    """Serving certificates signed by the sandbox CA, one per server name, made on first
    use and kept as SSL contexts."""

    def __init__(self, pki: Pki, workdir: Path) -> None:
        self.ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.ca_key = key
        self.workdir = workdir
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context(self, name: str) -> ssl.SSLContext:
        with self._lock:
            if name not in self._contexts:
                self._contexts[name] = self._make(name)
            return self._contexts[name]

    def pem_file(self, name: str) -> str:
        """A file holding a certificate for `name` and its key (mode 0600)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(self.ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        with tempfile.NamedTemporaryFile("wb", dir=self.workdir, suffix=".pem",
                                         delete=False) as f:  # mkstemp: mode 0600
            f.write(cert.public_bytes(serialization.Encoding.PEM))
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return f.name

    def _make(self, name: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        path = self.pem_file(name)  # ssl loads a chain only from a file
        ctx.load_cert_chain(path)
        Path(path).unlink()
        return ctx


def review_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The answer to an AdmissionReview (allowed) or a ConversionReview (converted)."""
    request = body.get("request") or {}
    uid = request.get("uid", "")
    if body.get("kind") == "ConversionReview":
        want = str(request.get("desiredAPIVersion") or "")
        converted = [{**o, "apiVersion": want} for o in request.get("objects") or []]
        return {"apiVersion": body.get("apiVersion", "apiextensions.k8s.io/v1"),
                "kind": "ConversionReview",
                "response": {"uid": uid, "convertedObjects": converted,
                             "result": {"status": "Success"}}}
    return {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview", "response": {"uid": uid, "allowed": True}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            data = json.dumps(review_answer(body)).encode()
            code = 200
        except (ValueError, AttributeError) as e:
            data, code = json.dumps({"error": str(e)}).encode(), 400
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per review would flood the log


def serve(minter: Minter, handler: type[BaseHTTPRequestHandler] | None = None
          ) -> ThreadingHTTPServer:
    """Start an HTTPS server on a free port of 127.0.0.1 (in a daemon thread) presenting,
    for each server name a client asks for, a certificate of `minter`'s CA; `handler`
    answers (default: the answerer's)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler or _Handler)
    base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # A client that sends no server name gets the certificate of "localhost".
    base.load_cert_chain(minter.pem_file("localhost"))

    def pick(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None,
             _: ssl.SSLContext) -> None:
        sock.context = minter.context(name or "localhost")

    base.sni_callback = pick
    server.socket = base.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="answer").start()
    return server
