"""The kubeconfig files the sandbox writes: one for people and tools, embedding the PEMs."""

from __future__ import annotations

import base64
from pathlib import Path

from gitops.sandbox.certs import Pki
from gitops.yamlio import dump_safe


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write(path: Path, *, server: str, pki: Pki, name: str) -> Path:
    """Write an admin kubeconfig for `server` with context `stackctl-<name>`.

    The certificates are embedded (not referenced by path) so the file keeps working when
    copied, and so that kubectl, the Python client and the components read the same thing.
    """
    context = f"stackctl-{name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": f"{context}-admin", "user": {
            "client-certificate-data": _b64(pki.admin_cert),
            "client-key-data": _b64(pki.admin_key)}}],
        "contexts": [{"name": context, "context": {
            "cluster": context, "user": f"{context}-admin", "namespace": "default"}}],
        "current-context": context,
    }
    path.write_text(dump_safe(doc), encoding="utf-8")
    path.chmod(0o600)
    return path
