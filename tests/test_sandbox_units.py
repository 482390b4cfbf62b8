"""Unit tests of the sandbox's parts: PKI, kubeconfig, stages, state file, processes, and the
faults of `up` (missing binaries, a port in use, a component dying, stale or live state),
with fake component binaries (small scripts) standing in for the real ones."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gitops.cli import main
from gitops.errors import SandboxError
from gitops.sandbox import certs, down, env, kubeconfig, processes, status, up
from gitops.sandbox.binaries import COMPONENTS, find_binaries
from gitops.sandbox.stages import FAIL_LABEL, READY_AFTER_LABEL, STAGES_YAML
from gitops.sandbox.state import Layout, State


def test_pki_signs_a_serving_cert_for_loopback_and_an_admin_cert_in_system_masters(
        tmp_path: Path) -> None:
    pki = certs.generate(tmp_path / "pki")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    serving = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.admin_cert.read_bytes())

    for leaf in (serving, admin):
        leaf.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert next(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)) == "127.0.0.1"
    assert serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value[0] == (
        ExtendedKeyUsageOID.SERVER_AUTH)
    orgs = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    assert admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value[0] == (
        ExtendedKeyUsageOID.CLIENT_AUTH)
    assert b"PUBLIC KEY" in pki.sa_pub.read_bytes()
    assert oct(pki.admin_key.stat().st_mode & 0o777) == "0o600"
    assert isinstance(serving.public_key(), ec.EllipticCurvePublicKey)


def test_kubeconfig_embeds_the_ca_and_admin_credentials_and_works_with_the_client(
        tmp_path: Path) -> None:
    pki = certs.generate(tmp_path / "pki")
    path = kubeconfig.write(tmp_path / "kubeconfig", server="https://127.0.0.1:6443",
                            pki=pki, name="demo")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "stackctl-demo"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert set(doc["users"][0]["user"]) == {"client-certificate-data", "client-key-data"}

    from gitops.kube import api_client

    client = api_client(path)
    assert client.configuration.host == "https://127.0.0.1:6443"
    client.close()


def test_api_client_of_a_missing_kubeconfig_says_how_to_get_one(tmp_path: Path) -> None:
    from gitops.errors import ClusterError
    from gitops.kube import api_client

    with pytest.raises(ClusterError, match=r"does not exist.*stackctl sandbox up"):
        api_client(tmp_path / "nope")


def test_cluster_error_keeps_the_kubernetes_status_of_an_api_exception() -> None:
    from kubernetes.client.exceptions import ApiException

    from gitops.kube import KubeApiError, UnreachableError, translate

    e = ApiException(status=409, reason="Conflict")
    e.body = ('{"kind":"Status","reason":"AlreadyExists","code":409,'
              '"message":"namespaces \\"x\\" already exists"}')
    err = translate(e, "create Namespace x")
    assert isinstance(err, KubeApiError)
    assert (err.code, err.reason, err.status["kind"]) == (409, "AlreadyExists", "Status")
    assert str(err) == ('cannot create Namespace x: the API server answered 409 '
                        'AlreadyExists: namespaces "x" already exists.')
    down_err = translate(ConnectionRefusedError(111, "Connection refused"), "list Pods")
    assert isinstance(down_err, UnreachableError)
    assert "sandbox status" in str(down_err)


def test_stages_are_kwoks_fast_set_plus_a_weighted_failure_stage() -> None:
    stages = {d["metadata"]["name"]: d for d in yaml.safe_load_all(STAGES_YAML)}
    assert set(stages) == {"node-initialize", "node-heartbeat-with-lease", "pod-ready",
                           "pod-complete", "pod-delete", "stackctl-pod-fail",
                           "stackctl-pod-ready-after"}
    fail = stages["stackctl-pod-fail"]["spec"]
    assert fail["selector"]["matchLabels"] == {FAIL_LABEL: "true"}
    # kwok leaves weight-0 stages out when a matching stage has a positive weight.
    assert fail["weight"] > stages["pod-ready"]["spec"].get("weight", 0) == 0
    template = yaml.safe_load(fail["next"]["statusTemplate"].replace("{{", "#{{"))
    assert template["phase"] == "Running"
    assert {c["type"]: c["status"] for c in template["conditions"]}["Ready"] == "False"


def test_state_file_round_trips(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    proc = processes.Proc("etcd", 42, 1234, ("etcd", "--name=x"), tmp_path / "etcd.log")
    state = State(name="n", server="https://127.0.0.1:1", kubeconfig="k", bin_dir="b",
                  ports={"etcd client": 1}, storage_classes=["standard"], procs=[proc])
    state.save(layout)
    assert State.load(layout) == state


def test_a_corrupt_state_file_is_a_sandbox_error_saying_what_to_delete(tmp_path: Path) -> None:
    Layout(tmp_path).state_file.write_text("{not json")
    with pytest.raises(SandboxError, match=r"cannot be read.*delete that folder"):
        State.load(Layout(tmp_path))


def test_a_process_is_ours_only_while_pid_and_start_time_match(tmp_path: Path) -> None:
    proc = processes.start("sleeper", ["sleep", "60"], tmp_path / "sleeper.log")
    assert processes.alive(proc.pid, proc.start_time)
    assert not processes.alive(proc.pid, proc.start_time + 1)  # a reused pid
    assert processes.stop(proc) is True
    assert not processes.alive(proc.pid, proc.start_time)
    assert processes.stop(proc) is False


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
             "print('ready', flush=True); time.sleep(60)"
    proc = processes.start("stubborn", [sys.executable, "-c", script], tmp_path / "s.log")
    for _ in range(100):
        if "ready" in processes.tail(proc.log):
            break
        time.sleep(0.05)
    assert processes.stop(proc, grace=0.5) is True
    assert not processes.alive(proc.pid, proc.start_time)


def test_a_port_in_use_is_reported_with_what_wanted_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(SandboxError, match=f"port {port} .*kube-apiserver, is already in use"):
            processes.check_port_free(port, "kube-apiserver")


# --- faults of up, with fake binaries ------------------------------------------------------

FAKE_ETCD = textwrap.dedent("""\
    #!{python}
    # Answers /health like etcd on the --listen-client-urls port.
    import http.server, sys
    if "--version" in sys.argv:
        print("etcd Version: 3.6.4"); sys.exit(0)
    url = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--listen-client-urls="))
    port = int(url.rsplit(":", 1)[1])
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b'{{"health":"true"}}')
        def log_message(self, *a): pass
    print("fake etcd serving", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
""")

FAKE_DYING = textwrap.dedent("""\
    #!/bin/sh
    [ "$1" = --version ] && {{ echo "Kubernetes v1.34.4"; exit 0; }}
    echo "I0101 starting {name}"
    echo "E0101 failed to listen on 127.0.0.1:1234: bind: address already in use" >&2
    exit 1
""")


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """Fake components: a working etcd, an API server that dies at start, others idle."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in COMPONENTS:
        text = FAKE_DYING.format(name=name)
        if name == "etcd":
            text = FAKE_ETCD.format(python=sys.executable)
        elif name != "kube-apiserver":
            text = "#!/bin/sh\n[ \"$1\" = --version ] && echo v0.0.1 && exit 0\nexec sleep 60\n"
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("STACKCTL_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"


def fake_etcd_pids(root: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_missing_binaries_tell_to_run_make_sandbox(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"kube-apiserver.*missing.*make sandbox"):
        find_binaries(tmp_path)


def test_up_with_missing_binaries_exits_2_saying_run_make_sandbox(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STACKCTL_SANDBOX_BIN", str(tmp_path / "nothing"))
    assert main(["sandbox", "up", "--state-dir", str(tmp_path / "sb")]) == 2
    assert "Run 'make sandbox'" in " ".join(capsys.readouterr().err.split())


def test_a_component_dying_at_start_shows_its_log_and_leaves_nothing_running(
        tmp_path: Path, fake_bin: Path) -> None:
    with pytest.raises(SandboxError) as info:
        up(tmp_path / "sb", bin_dir=fake_bin, timeout=30)
    message = str(info.value)
    assert "kube-apiserver (pid" in message and "exited during start-up" in message
    assert "bind: address already in use" in message  # the tail of its log
    assert "picks new free ports" in message
    assert fake_etcd_pids(fake_bin) == []  # etcd, started first, was stopped again
    assert not Layout(tmp_path / "sb").state_file.exists()
    assert (tmp_path / "sb" / "logs" / "kube-apiserver.log").is_file()  # logs stay


def test_a_port_in_use_for_the_api_stops_up_before_anything_starts(
        tmp_path: Path, fake_bin: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(SandboxError, match=f"port {port} .* already in use"):
            up(tmp_path / "sb", bin_dir=fake_bin, api_port=port)
    assert fake_etcd_pids(fake_bin) == []


def test_up_refuses_while_a_recorded_process_still_runs(tmp_path: Path, fake_bin: Path) -> None:
    layout = Layout(tmp_path / "sb")
    layout.root.mkdir()
    live = processes.start("etcd", ["sleep", "60"], tmp_path / "etcd.log")
    try:
        State(name="default", server="https://127.0.0.1:1", kubeconfig="/k", bin_dir="",
              ports={}, storage_classes=[], procs=[live]).save(layout)
        with pytest.raises(SandboxError, match=rf"already running .*etcd {live.pid}.*down"):
            up(layout.root, bin_dir=fake_bin)
        assert processes.alive(live.pid, live.start_time)  # a live sandbox is left alone
    finally:
        processes.stop(live)


def test_up_cleans_a_stale_state_dir_whose_processes_are_gone(
        tmp_path: Path, fake_bin: Path) -> None:
    layout = Layout(tmp_path / "sb")
    (layout.root / "etcd-data").mkdir(parents=True)
    (layout.root / "etcd-data" / "old").write_text("x")
    (layout.root / "mine.txt").write_text("not the sandbox's")
    dead = processes.start("etcd", ["true"], tmp_path / "etcd.log")
    for _ in range(100):
        if not processes.alive(dead.pid, dead.start_time):
            break
        time.sleep(0.02)
    State(name="default", server="", kubeconfig="/k", bin_dir="", ports={},
          storage_classes=[], procs=[dead]).save(layout)
    messages: list[str] = []
    with pytest.raises(SandboxError, match=r"kube-apiserver .* exited during start-up"):
        up(layout.root, bin_dir=fake_bin, progress=messages.append, timeout=30)
    assert any("stale state dir" in m for m in messages)
    assert not (layout.root / "etcd-data" / "old").exists()
    assert (layout.root / "mine.txt").is_file()  # only the sandbox's own entries go


def test_down_status_and_env_without_a_sandbox(
        tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sb = tmp_path / "sb"
    assert not down(sb).recorded
    st = status(sb, bin_dir=fake_bin)
    assert not st.recorded and not st.running
    assert next(c.version for c in st.components) == "v3.6.4"
    with pytest.raises(SandboxError, match=r"no sandbox was started.*sandbox up"):
        env(sb)
    assert main(["sandbox", "down", "--state-dir", str(sb)]) == 0
    assert "nothing to stop" in capsys.readouterr().out
    assert main(["sandbox", "status", "--state-dir", str(sb)]) == 1
    assert "not running" in capsys.readouterr().out
    assert main(["sandbox", "env", "--state-dir", str(sb)]) == 2


def test_default_state_dir_follows_the_cache_location(cache: Path) -> None:
    from gitops.sandbox import default_state_dir

    assert default_state_dir("x") == cache / "sandbox-state" / "x"


def test_build_script_without_go_says_how_to_get_it(tmp_path: Path) -> None:
    from gitops.paths import project_root

    env_ = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    for tool in ("dirname", "cat", "sha256sum", "cut", "mkdir"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                               text=True).stdout.strip()
        if found:
            (tmp_path / tool).symlink_to(found)
    proc = subprocess.run(["/bin/bash", str(project_root() / "sandbox" / "build.sh")],
                          capture_output=True, text=True, env=env_, check=False)
    assert proc.returncode == 2
    assert "Go toolchain" in proc.stderr and "make sandbox" in proc.stderr


def test_a_process_started_to_die_with_its_parent_is_gone_when_the_parent_is_killed(
        tmp_path: Path) -> None:
    # A parent process starts a child tied to it, reports the child, then is SIGKILLed.
    script = textwrap.dedent(f"""\
        import json, sys, time
        from pathlib import Path
        from gitops.sandbox import processes
        p = processes.start("child", ["sleep", "60"], Path({str(tmp_path / 'c.log')!r}),
                            die_with_parent=True)
        print(json.dumps([p.pid, p.start_time]), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    pid, start_time = json.loads(parent.stdout.readline())
    assert processes.alive(pid, start_time)
    parent.kill()
    parent.wait()
    for _ in range(200):
        if not processes.alive(pid, start_time):
            break
        time.sleep(0.02)
    assert not processes.alive(pid, start_time)


def test_up_with_some_recorded_processes_dead_says_to_stop_the_rest_first(
        tmp_path: Path, fake_bin: Path) -> None:
    layout = Layout(tmp_path / "sb")
    layout.root.mkdir()
    live = processes.start("etcd", ["sleep", "60"], tmp_path / "etcd.log")
    dead = processes.Proc("kwok", live.pid, live.start_time + 1, ("kwok",), tmp_path / "k.log")
    try:
        State(name="default", server="", kubeconfig="/k", bin_dir="", ports={},
              storage_classes=[], procs=[live, dead]).save(layout)
        with pytest.raises(SandboxError, match=r"partly running .*kwok died.*sandbox down"):
            up(layout.root, bin_dir=fake_bin)
        assert processes.alive(live.pid, live.start_time)
    finally:
        processes.stop(live)


def test_api_client_with_an_unknown_context_names_it(tmp_path: Path) -> None:
    from gitops.errors import ClusterError
    from gitops.kube import api_client

    pki = certs.generate(tmp_path / "pki")
    path = kubeconfig.write(tmp_path / "kubeconfig", server="https://127.0.0.1:6443",
                            pki=pki, name="demo")
    with pytest.raises(ClusterError, match=r"context 'prod' of the kubeconfig"):
        api_client(path, "prod")


def test_the_delayed_ready_stage_is_pod_ready_with_a_delay_read_from_the_pod_label() -> None:
    stages = {d["metadata"]["name"]: d for d in yaml.safe_load_all(STAGES_YAML)}
    later, ready = stages["stackctl-pod-ready-after"]["spec"], stages["pod-ready"]["spec"]
    assert later["next"] == ready["next"]
    assert later["delay"]["durationFrom"]["expressionFrom"] == \
        f'.metadata.labels["{READY_AFTER_LABEL}"]'
    keys = {e["key"]: e["operator"] for e in later["selector"]["matchExpressions"]}
    assert keys[f'.metadata.labels["{READY_AFTER_LABEL}"]'] == "Exists"
    assert keys[f'.metadata.labels["{FAIL_LABEL}"]'] == "DoesNotExist"  # the failure wins
    assert later["weight"] > ready.get("weight", 0)
