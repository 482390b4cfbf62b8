"""The example stack: mlstack's upstream releases and the repo's own deployment of it.

Renders with the real kustomize binary. docs/example-stack.md describes every release,
every local customization and the one conflict planned for the v1.3.0 to v1.4.1 upgrade;
the tables below are that description in executable form, and the upgrade engine's tests
can use them as their oracle.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.cluster import list_clusters, load_cluster
from gitops.paths import project_root, sandbox_bin_dir
from gitops.resource import ResourceId
from gitops.stack import load_stack
from gitops.yamlio import load_all_safe

ROOT = project_root()
UPSTREAM = ROOT / "examples" / "upstream" / "mlstack"
VENDOR = ROOT / "vendor" / "mlstack"
RELEASES = ("v1.3.0", "v1.4.0-rc.1", "v1.4.0", "v1.4.1")
CLUSTERS = ("microk8s-dev", "eks-prod")

Obj = dict[str, Any]
Edit = tuple[str, str]  # (upstream text, local text): replaced exactly once

DASHBOARD_LIMITS = """\
          limits:  # local: bound the dashboard
            cpu: 500m
            memory: 512Mi
"""
LIMIT_RANGE_ENTRY = """\
# local: default requests and limits for every container of the namespace
- ../common/limit-range/base
"""


def _requests(cpu: str, memory: str) -> str:
    return f"          requests:\n            cpu: {cpu}\n            memory: {memory}\n"


# The platform team's direct edits of vendor/mlstack (upstream v1.3.0), file by file.
LOCAL_EDITS: dict[str, list[Edit]] = {
    "apps/dashboard/upstream/base/deployment.yaml": [
        ("spec:\n  replicas: 1\n",
         "spec:\n  replicas: 3  # local: three replicas for the whole company\n"),
        (_requests("100m", "128Mi"), _requests("100m", "128Mi") + DASHBOARD_LIMITS),
    ],
    "apps/dashboard/upstream/base/kustomization.yaml": [
        ("  - METADATA_DB_HOST=metadata-db\n",
         "  - METADATA_DB_HOST=metadata-db\n"
         "  - SUPPORT_URL=https://wiki.platform.example.com/mlstack  # local\n"),
    ],
    "common/metadata-db/base/kustomization.yaml": [
        ("- name: mysql\n",
         "- name: mysql\n"
         "  newName: mirror.gcr.io/library/mysql  # local: Docker Hub pull limits\n"),
    ],
    "apps/notebook-controller/upstream/manager/params.env": [
        ("ENABLE_CULLING=false\n", "ENABLE_CULLING=true\n"),
    ],
    "example/kustomization.yaml": [
        ("- ../apps/usage-reporter/upstream/base\n",
         "- ../apps/usage-reporter/upstream/base\n" + LIMIT_RANGE_ENTRY),
    ],
}
# Files the platform team added inside the vendored tree.
LOCAL_FILES = (
    "common/limit-range/base/kustomization.yaml",
    "common/limit-range/base/limit-range.yaml",
)

# The correct result of upgrading vendor/mlstack to v1.4.1, written as edits of v1.4.1:
# every local edit survives, and the planned conflict (the dashboard's replicas) is
# resolved keeping the local value.
UPGRADED_EDITS: dict[str, list[Edit]] = {
    **LOCAL_EDITS,
    "apps/dashboard/upstream/base/deployment.yaml": [
        ("spec:\n  replicas: 2\n",
         "spec:\n  replicas: 3  # local: three replicas for the whole company\n"),
        (_requests("200m", "256Mi"), _requests("200m", "256Mi") + DASHBOARD_LIMITS),
    ],
    "example/kustomization.yaml": [
        ("- ../apps/model-registry/upstream/base\n",
         "- ../apps/model-registry/upstream/base\n" + LIMIT_RANGE_ENTRY),
    ],
}

# References into the vendored tree that the upgrade must rewrite: v1.4.0 moved the folder.
OVERLAY_REWRITES: dict[str, list[Edit]] = {
    "overlays/internal-gateway/kustomization.yaml": [
        ("- ../../vendor/mlstack/common/gateway-1-9/ingress-gateway/base\n",
         "- ../../vendor/mlstack/common/gateway-1-11/ingress-gateway/base\n"),
    ],
}

# The one conflict of the v1.3.0 to v1.4.1 upgrade: file, resource, field, base/ours/theirs.
PLANNED_CONFLICT = (
    "apps/dashboard/upstream/base/deployment.yaml",
    "apps/Deployment//dashboard",
    "spec.replicas",
    1, 3, 2,
)

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
MIRROR = {"microk8s-dev": "localhost:32000/", "eks-prod": f"{ECR}/"}
NAMESPACE = {"microk8s-dev": "mlstack-dev", "eks-prod": "mlstack-prod"}
PREFIX = {"microk8s-dev": "dev-", "eks-prod": "prod-"}
STORAGE = {"microk8s-dev": ("microk8s-hostpath", "10Gi"), "eks-prod": ("gp3", "100Gi")}
SERVICE_TYPE = {"microk8s-dev": "NodePort", "eks-prod": "LoadBalancer"}
REPLICAS = {
    "microk8s-dev": {"dashboard": 3, "ingress-gateway": 1, "notebook-controller": 1,
                     "training-operator": 1},
    "eks-prod": {"dashboard": 3, "ingress-gateway": 3, "notebook-controller": 2,
                 "training-operator": 2},
}
LIMITS = {  # (deployment or statefulset, container) -> limits
    "microk8s-dev": {
        ("notebook-controller", "manager"): {"cpu": "500m", "memory": "256Mi"},
        ("training-operator", "training-operator"): {"cpu": "500m", "memory": "512Mi"},
        ("dashboard", "dashboard"): {"cpu": "500m", "memory": "512Mi"},
    },
    "eks-prod": {
        ("notebook-controller", "manager"): {"cpu": "1", "memory": "1Gi"},
        ("training-operator", "training-operator"): {"cpu": "2", "memory": "2Gi"},
        ("metadata-db", "mysql"): {"cpu": "2", "memory": "4Gi"},
        ("dashboard", "dashboard"): {"cpu": "500m", "memory": "512Mi"},
    },
}
NETWORK_POLICIES = {
    "allow-ingress-gateway", "allow-same-namespace", "allow-webhooks", "default-deny-ingress",
}

# Images of the upgraded clusters, before the registry mirror: model-registry is new in
# v1.4.0, so no mirror entry covers it yet (the plan shows it; the team adds one).
UPGRADED_IMAGES = {
    "admission-webhook": "mlstack/admission-webhook:v1.4.0",
    "dashboard": "mlstack/dashboard:v1.4.1",
    "ingress-gateway": "mlstack/gateway:1.11.4",
    "metadata-db": "library/mysql:8.0.29",
    "notebook-controller": "mlstack/notebook-controller:v1.4.1",
    "training-operator": "mlstack/training-operator:v1.4.0",
}


# ---------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def kustomize() -> Path:
    explicit = os.environ.get("STACKCTL_KUSTOMIZE")
    binary = Path(explicit) if explicit else sandbox_bin_dir() / "kustomize"
    if not binary.is_file():
        pytest.skip(f"no kustomize binary at {binary}: build it with 'make kustomize'")
    return binary


@pytest.fixture(scope="module")
def build(kustomize: Path) -> Callable[[Path], list[Obj]]:
    cache: dict[Path, list[Obj]] = {}

    def run(path: Path) -> list[Obj]:
        if path not in cache:
            proc = subprocess.run(
                [str(kustomize), "build", str(path)], capture_output=True, text=True,
                check=False,
            )
            assert proc.returncode == 0, f"kustomize build {path} failed:\n{proc.stderr}"
            cache[path] = [d for d in load_all_safe(proc.stdout, path=path) if d]
        return cache[path]

    return run


def rid(obj: Obj) -> ResourceId:
    return ResourceId.of(obj)


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def workloads(objs: list[Obj]) -> dict[str, Obj]:
    return {**by_kind(objs, "Deployment"), **by_kind(objs, "StatefulSet")}


def containers(obj: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def images(objs: list[Obj]) -> dict[str, list[str]]:
    return {name: [c["image"] for c in containers(w).values()]
            for name, w in workloads(objs).items()}


def files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}


def apply_edits(text: str, edits: list[Edit], *, where: str) -> str:
    for old, new in edits:
        assert text.count(old) == 1, f"{where}: expected {old!r} exactly once"
        text = text.replace(old, new)
    return text


def make_upgraded_repo(dest: Path, *, rewrite: bool = True) -> Path:
    """The repo as a correct upgrade to v1.4.1 leaves it: v1.4.1 with every local edit,
    the local files, the repo's overlays and clusters with the moved path rewritten."""
    vendor = dest / "vendor" / "mlstack"
    shutil.copytree(UPSTREAM / "v1.4.1", vendor)
    for rel, edits in UPGRADED_EDITS.items():
        p = vendor / rel
        p.write_text(apply_edits(p.read_text(), edits, where=rel))
    for rel in LOCAL_FILES:
        (vendor / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(VENDOR / rel, vendor / rel)
    for top in ("overlays", "clusters"):
        shutil.copytree(ROOT / top, dest / top)
    shutil.copyfile(ROOT / "stack.yaml", dest / "stack.yaml")
    for rel, edits in OVERLAY_REWRITES.items() if rewrite else ():
        p = dest / rel
        p.write_text(apply_edits(p.read_text(), edits, where=rel))
    return dest


# ------------------------------------------------------------------ upstream releases


@pytest.mark.parametrize("release", RELEASES)
def test_every_release_example_renders_a_complete_platform(
    build: Callable[[Path], list[Obj]], release: str
) -> None:
    objs = build(UPSTREAM / release / "example")
    ids = [rid(o) for o in objs]
    assert len(ids) == len(set(ids)) > 40
    assert set(by_kind(objs, "Namespace")) == {"mlstack-system"}
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] == "Deployment"} == {
        "mlstack-system"}
    crds = by_kind(objs, "CustomResourceDefinition")
    assert set(crds) == {"notebooks.mlstack.example.org", "trainingjobs.mlstack.example.org"}
    for crd in crds.values():
        for version in crd["spec"]["versions"]:
            spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            assert spec["type"] == "object" and spec["properties"]
    hooks = [*by_kind(objs, "MutatingWebhookConfiguration").values(),
             *by_kind(objs, "ValidatingWebhookConfiguration").values()]
    assert hooks
    services = {(s["metadata"]["namespace"], n) for n, s in by_kind(objs, "Service").items()}
    for hook in hooks:
        for w in hook["webhooks"]:
            assert w["failurePolicy"] == "Ignore"
            ref = w["clientConfig"]["service"]
            assert (ref["namespace"], ref["name"]) in services
    db = by_kind(objs, "StatefulSet")["metadata-db"]
    assert db["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    for name, w in workloads(objs).items():
        for c in containers(w).values():
            assert c["resources"]["requests"], f"{release}: {name}/{c['name']} has no requests"
    secret = next(iter(by_kind(objs, "Secret").values()))
    assert secret["metadata"]["name"].startswith("metadata-db-secrets-")  # generated
    assert images(objs)["dashboard"] == [f"ghcr.io/mlstack/dashboard:{release}"]


def test_v1_4_moves_renames_splits_adds_and_removes_like_real_upstreams(
    build: Callable[[Path], list[Obj]],
) -> None:
    old, new = UPSTREAM / "v1.3.0", UPSTREAM / "v1.4.0"
    assert (old / "common/gateway-1-9").is_dir() and not (new / "common/gateway-1-9").exists()
    assert (new / "common/gateway-1-11").is_dir()
    training = "apps/training-operator/upstream/base"
    assert (old / training / "rbac.yaml").is_file()
    assert {"service-account.yaml", "cluster-role.yaml"} <= {
        p.name for p in (new / training).iterdir()}
    before, after = build(old / "example"), build(new / "example")
    roles_before, roles_after = by_kind(before, "ClusterRole"), by_kind(after, "ClusterRole")
    assert "training-operator" in roles_before and "training-operator" not in roles_after
    assert "mlstack-training-operator" in roles_after
    assert "usage-reporter" in workloads(before) and "usage-reporter" not in workloads(after)
    assert "model-registry" in workloads(after) and "model-registry" not in workloads(before)
    notebook = by_kind(after, "CustomResourceDefinition")["notebooks.mlstack.example.org"]
    served = {v["name"]: (v["served"], v["storage"]) for v in notebook["spec"]["versions"]}
    assert served == {"v1": (True, True), "v1beta1": (True, False)}
    assert images(before)["ingress-gateway"] == ["ghcr.io/mlstack/gateway:1.9.5"]
    assert images(after)["ingress-gateway"] == ["ghcr.io/mlstack/gateway:1.11.4"]
    assert workloads(after)["dashboard"]["spec"]["replicas"] == 2


def test_v1_4_1_is_a_small_patch_over_v1_4_0() -> None:
    a, b = UPSTREAM / "v1.4.0", UPSTREAM / "v1.4.1"
    assert files(a) == files(b)
    changed = {f for f in files(a) if (a / f).read_bytes() != (b / f).read_bytes()}
    assert changed == {
        "apps/dashboard/upstream/base/deployment.yaml",
        "apps/dashboard/upstream/base/kustomization.yaml",
        "apps/model-registry/upstream/base/service.yaml",  # the fix: targetPort
        "apps/notebook-controller/upstream/base/kustomization.yaml",
        "apps/notebook-controller/upstream/manager/manager.yaml",
    }


# ------------------------------------------------------------- the vendored release


def test_vendor_is_v1_3_0_apart_from_the_documented_local_edits() -> None:
    upstream = UPSTREAM / "v1.3.0"
    assert files(VENDOR) == files(upstream) | set(LOCAL_FILES)
    for rel in sorted(files(upstream)):
        expected = (upstream / rel).read_bytes()
        if rel in LOCAL_EDITS:
            expected = apply_edits(expected.decode(), LOCAL_EDITS[rel], where=rel).encode()
        assert (VENDOR / rel).read_bytes() == expected, f"vendor/mlstack/{rel} differs"


def test_stack_yaml_tracks_v1_3_of_the_example_upstream() -> None:
    stack = load_stack(ROOT)
    assert (stack.name, stack.ref) == ("mlstack", "v1.3")
    assert Path(stack.resolve_source()) == UPSTREAM
    # `ref: v1.3` must resolve to the vendored v1.3.0: no other v1.3.x release exists.
    assert sorted(p.name for p in UPSTREAM.iterdir() if p.name.startswith("v1.3")) == [
        "v1.3.0"]


# ------------------------------------------------------------------------- clusters


def test_both_clusters_load_with_their_targets() -> None:
    stack = load_stack(ROOT)
    assert list_clusters(stack) == sorted(CLUSTERS)
    dev, prod = load_cluster(stack, "microk8s-dev"), load_cluster(stack, "eks-prod")
    assert (dev.context, dev.wave, dev.policy.timeout) == ("microk8s", 0, 300.0)
    assert prod.wave == 1 and prod.policy.timeout == 600.0
    assert "Secret" in prod.policy.protected_kinds


def check_customizations(objs: list[Obj], cluster: str, *, release: str) -> None:
    """Assert every local customization is in one cluster's render."""
    ns = NAMESPACE[cluster]
    for name, imgs in images(objs).items():
        for image in imgs:
            if release == "v1.4.1" and name == "model-registry":
                assert image == "ghcr.io/mlstack/model-registry:v1.4.0"
                continue
            assert image.startswith(MIRROR[cluster]), f"{name}: {image} is not mirrored"
    # The vendor edit mirrors mysql to mirror.gcr.io; each cluster maps that name again.
    assert images(objs)["metadata-db"][0].rsplit(":", 1)[0].endswith("/library/mysql")
    db = workloads(objs)["metadata-db"]
    claim = db["spec"]["volumeClaimTemplates"][0]["spec"]
    assert (claim["storageClassName"], claim["resources"]["requests"]["storage"]) == \
        STORAGE[cluster]
    assert by_kind(objs, "Service")["ingress-gateway"]["spec"]["type"] == SERVICE_TYPE[cluster]
    for name, count in REPLICAS[cluster].items():
        assert workloads(objs)[name]["spec"]["replicas"] == count, name
    for (workload, container), limits in LIMITS[cluster].items():
        assert containers(workloads(objs)[workload])[container]["resources"]["limits"] == \
            limits, f"{workload}/{container}"
    assert set(by_kind(objs, "NetworkPolicy")) == NETWORK_POLICIES
    # eks-prod's second gateway, built from upstream's gateway base by path.
    internal = by_kind(objs, "Service").get("ingress-gateway-internal")
    if cluster == "eks-prod":
        assert internal is not None and internal["spec"]["type"] == "LoadBalancer"
        assert internal["metadata"]["annotations"][
            "service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
        assert internal["spec"]["selector"] == {"app": "internal-gateway"}
        assert workloads(objs)["ingress-gateway-internal"]["spec"]["replicas"] == 1
    else:
        assert internal is None
    assert set(by_kind(objs, "LimitRange")) == {"mlstack-defaults"}
    dashboard_config = next(o for o in objs if o["kind"] == "ConfigMap"
                            and o["metadata"]["name"].startswith("dashboard-config-"))
    assert dashboard_config["data"]["CLUSTER_NAME"] == cluster
    assert dashboard_config["data"]["SUPPORT_URL"] == "https://wiki.platform.example.com/mlstack"
    notebook_config = next(o for o in objs if o["kind"] == "ConfigMap"
                           and o["metadata"]["name"].startswith("notebook-controller-config-"))
    assert notebook_config["data"]["ENABLE_CULLING"] == "true"
    # The removed component: the tensorboard controller and its RBAC.
    assert not [o for o in objs if "tensorboard-controller" in o["metadata"]["name"]]
    # Every namespaced object, subject and webhook service is in the cluster's namespace.
    assert set(by_kind(objs, "Namespace")) == {ns}
    for o in objs:
        if "namespace" in o["metadata"]:
            assert o["metadata"]["namespace"] == ns, rid(o)
        for s in o.get("subjects") or []:
            assert s["namespace"] == ns, rid(o)
        for w in o.get("webhooks") or []:
            assert w["clientConfig"]["service"]["namespace"] == ns, rid(o)
    # Cluster-scoped objects carry the cluster's prefix, except the shared CRDs.
    for o in objs:
        if not o["metadata"].get("namespace") and o["kind"] not in (
                "Namespace", "CustomResourceDefinition"):
            assert o["metadata"]["name"].startswith(PREFIX[cluster]), rid(o)
            ref = o.get("roleRef")
            assert ref is None or ref["name"].startswith(PREFIX[cluster]), rid(o)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_cluster_render_carries_every_customization(
    build: Callable[[Path], list[Obj]], cluster: str
) -> None:
    objs = build(ROOT / "clusters" / cluster)
    check_customizations(objs, cluster, release="v1.3.0")
    assert "usage-reporter" in workloads(objs)
    assert images(objs)["dashboard"] == [f"{MIRROR[cluster]}mlstack/dashboard:v1.3.0"]


def test_the_two_clusters_share_no_object_but_the_crds(
    build: Callable[[Path], list[Obj]],
) -> None:
    dev = {rid(o) for o in build(ROOT / "clusters" / "microk8s-dev")}
    prod = {rid(o) for o in build(ROOT / "clusters" / "eks-prod")}
    shared = dev & prod
    assert {r.kind for r in shared} == {"CustomResourceDefinition"}
    assert len(shared) == 2


# -------------------------------------------------------------------- the upgrade


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    """Scalars by path; lists of named objects keyed by name, lists of KEY=VALUE strings
    by KEY, other lists of strings as sets (the merge rules of docs/example-stack.md)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list) and value and all(
            isinstance(i, dict) and "name" in i for i in value):
        for item in value:
            _flatten(item, f"{path}[{item['name']}]", out)
    elif isinstance(value, list) and all(isinstance(i, str) for i in value):
        for item in value:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", item)
            if m:
                out[f"{path}[{m.group(1)}]"] = m.group(2)
            else:
                out[f"{path}[{item}]"] = True
    else:
        out[path] = value


def _fields(tree: Path, rel: str) -> dict[tuple[str, str], Any]:
    """(resource, field) -> value for one file; resource is group/kind/namespace/name."""
    text = (tree / rel).read_text()
    out: dict[tuple[str, str], Any] = {}
    if rel.endswith(".env"):
        fields: dict[str, Any] = {}
        _flatten([ln for ln in text.splitlines() if ln and not ln.startswith("#")], "", fields)
        return {("", k): v for k, v in fields.items()}
    for doc in load_all_safe(text, path=tree / rel):
        r = ResourceId.of(doc)
        fields = {}
        _flatten(doc, "", fields)
        out.update({(f"{r.group}/{r.kind}/{r.namespace}/{r.name}", k): v
                    for k, v in fields.items()})
    return out


def _conflicts(base: Path, ours: Path, theirs: Path) -> Iterator[tuple[Any, ...]]:
    missing = object()
    for rel in sorted(LOCAL_EDITS):
        b, o, t = _fields(base, rel), _fields(ours, rel), _fields(theirs, rel)
        for key in sorted(set(b) | set(o) | set(t)):
            bv, ov, tv = b.get(key, missing), o.get(key, missing), t.get(key, missing)
            if ov != bv and tv != bv and ov != tv:
                yield rel, *key, bv, ov, tv


def test_the_upgrade_to_v1_4_1_has_exactly_the_one_planned_conflict() -> None:
    base, theirs = UPSTREAM / "v1.3.0", UPSTREAM / "v1.4.1"
    assert all((theirs / rel).is_file() for rel in LOCAL_EDITS)  # no edited file moved
    assert list(_conflicts(base, VENDOR, theirs)) == [PLANNED_CONFLICT]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_clusters_render_the_correct_upgrade_result_with_every_customization(
    build: Callable[[Path], list[Obj]], tmp_path_factory: pytest.TempPathFactory,
    cluster: str,
) -> None:
    repo = make_upgraded_repo(tmp_path_factory.mktemp("upgraded"))
    objs = build(repo / "clusters" / cluster)
    check_customizations(objs, cluster, release="v1.4.1")
    imgs = images(objs)
    for name, image in UPGRADED_IMAGES.items():
        assert imgs[name][0].endswith("/" + image), (name, imgs[name])
    assert imgs["notebook-controller"][1].endswith("/kubebuilder/kube-rbac-proxy:v0.11.0")
    assert "usage-reporter" not in imgs and "model-registry" in imgs
    prefix = PREFIX[cluster]
    assert f"{prefix}mlstack-training-operator" in by_kind(objs, "ClusterRole")
    assert set(by_kind(objs, "ValidatingWebhookConfiguration")) == {f"{prefix}training-operator"}
    assert set(by_kind(objs, "PodDisruptionBudget")) == {"dashboard"}
    crd = by_kind(objs, "CustomResourceDefinition")["trainingjobs.mlstack.example.org"]
    run_policy = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["runPolicy"]["properties"]
    assert "ttlSecondsAfterFinished" in run_policy
    model_registry = by_kind(objs, "Service")["model-registry"]
    assert model_registry["spec"]["ports"][0]["targetPort"] == "http-api"  # v1.4.1's fix


def test_the_upgraded_eks_prod_fails_to_render_unless_the_moved_path_is_rewritten(
    kustomize: Path, tmp_path: Path
) -> None:
    repo = make_upgraded_repo(tmp_path, rewrite=False)
    proc = subprocess.run([str(kustomize), "build", str(repo / "clusters" / "eks-prod")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "gateway-1-9" in proc.stderr



@pytest.mark.parametrize("cluster", CLUSTERS)
def test_sandbox_storage_component_prebinds_the_metadata_db_claim(
    build: Callable[[Path], list[Obj]], tmp_path: Path, cluster: str
) -> None:
    # The sandbox has no volume provisioner: without this volume the StatefulSet's pod
    # would never be scheduled onto a kwok node.
    for top in ("vendor", "overlays", "clusters"):
        shutil.copytree(ROOT / top, tmp_path / top)
    kustomization = tmp_path / "clusters" / cluster / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text() + f"components:\n- ../../overlays/sandbox/{cluster}\n")
    objs = build(tmp_path / "clusters" / cluster)
    (volume,) = by_kind(objs, "PersistentVolume").values()
    db = workloads(objs)["metadata-db"]
    template = db["spec"]["volumeClaimTemplates"][0]
    claim = f"{template['metadata']['name']}-{db['metadata']['name']}-0"
    assert volume["spec"]["claimRef"] == {"namespace": NAMESPACE[cluster], "name": claim}
    assert volume["spec"]["storageClassName"] == template["spec"]["storageClassName"]
    assert volume["spec"]["capacity"] == template["spec"]["resources"]["requests"]
    assert volume["spec"]["accessModes"] == template["spec"]["accessModes"]
