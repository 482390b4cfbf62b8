"""An API server that refuses the client certificate (401 Unauthorized): the message names
the kubeconfig, its context and user, and the likely cause, read from the certificate."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gitops.cli import main

pytestmark = pytest.mark.integration


def _issue(ca_cert: x509.Certificate | None, ca_key: Any, *, days: tuple[int, int]
           ) -> tuple[bytes, bytes]:
    """A client certificate (PEM) and key, valid from now+days[0] to now+days[1], signed
    by the CA (or, without one, by a CA of its own)."""
    key = ec.generate_private_key(ec.SECP256R1())
    if ca_cert is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another-cluster-ca")])
    else:
        issuer = ca_cert.subject
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                        "system:masters")]))
            .issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days[0]))
            .not_valid_after(now + dt.timedelta(days=days[1]))
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _kubeconfig(tmp_path: Path, sandbox_kubeconfig: Path, cert: bytes, key: bytes) -> Path:
    doc = yaml.safe_load(sandbox_kubeconfig.read_text())
    user = doc["users"][0]["user"]
    user["client-certificate-data"] = base64.b64encode(cert).decode()
    user["client-key-data"] = base64.b64encode(key).decode()
    path = tmp_path / "stale-kubeconfig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _repo(root: Path, kubeconfig: Path) -> None:
    (root / "clusters/dev").mkdir(parents=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    (root / "clusters/dev/cluster.yaml").write_text(f"kubeconfig: {kubeconfig}\n")
    (root / "clusters/dev/kustomization.yaml").write_text("resources: []\n")


@pytest.fixture
def sandbox_ca(sandbox: Any) -> tuple[x509.Certificate, Any]:
    if sandbox.state_dir is None:
        pytest.skip("an existing cluster ($STACKCTL_TEST_KUBECONFIG): its CA key is not here")
    pki = Path(sandbox.state_dir) / "pki"
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    return cert, key


@pytest.mark.parametrize(("case", "cause"), [
    ("expired", "expired on"),
    ("foreign", "not by the certificate authority of the cluster"),
])
def test_an_unauthorized_client_certificate_names_the_kubeconfig_and_the_cause(
    sandbox: Any, sandbox_ca: tuple[x509.Certificate, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str,
    cause: str
) -> None:
    ca_cert, ca_key = sandbox_ca
    if case == "expired":
        cert, key = _issue(ca_cert, ca_key, days=(-30, -1))
    else:
        cert, key = _issue(None, None, days=(-1, 30))
    kubeconfig = _kubeconfig(tmp_path, Path(sandbox.kubeconfig), cert, key)
    _repo(tmp_path / "repo", kubeconfig)
    monkeypatch.chdir(tmp_path / "repo")
    code = main(["history", "--cluster", "dev"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "401" in err and "Unauthorized" in err
    assert str(kubeconfig) in err and "stackctl-pytest" in err  # the context's name
    assert cause in err, err
    assert "Traceback" not in err and "PRIVATE KEY" not in err
