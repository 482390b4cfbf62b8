"""stack.yaml and cluster.yaml: validated with the file and line in every message."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.cluster import load_cluster, parse_duration, select_clusters
from gitops.errors import ConfigError
from gitops.stack import load_stack


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_stack_yaml_loads_name_source_and_ref(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: kubeflow\nsource: ./up.tar.gz\nref: v1.4\n"})
    stack = load_stack(tmp_path)
    assert (stack.name, stack.ref) == ("kubeflow", "v1.4")
    assert stack.vendor_dir == tmp_path / "vendor" / "kubeflow"
    assert stack.resolve_source() == str(tmp_path / "up.tar.gz")


def test_stack_yaml_is_found_from_a_subfolder(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource: x\n", "clusters/dev/k.txt": ""})
    assert load_stack(tmp_path / "clusters" / "dev").root == tmp_path


def test_unknown_key_names_the_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource: x\nrefs: v1\n"})
    with pytest.raises(ConfigError) as e:
        load_stack(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'stack.yaml'}:3: unknown key 'refs'")
    assert "Known keys here: name, source, ref" in str(e.value)


def test_wrong_type_names_the_line(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource:\n  - x\n"})
    with pytest.raises(ConfigError, match=r"stack.yaml:2: 'source' must be a string"):
        load_stack(tmp_path)


def test_missing_required_key(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\n"})
    with pytest.raises(ConfigError, match="missing required key 'source'"):
        load_stack(tmp_path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource: [x\n"})
    with pytest.raises(ConfigError, match=r"stack.yaml:3: invalid YAML"):
        load_stack(tmp_path)


def test_no_stack_yaml_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stackctl init"):
        load_stack(tmp_path)


def test_cluster_yaml_policy_and_defaults(tmp_path: Path) -> None:
    _write(tmp_path, {
        "stack.yaml": "name: a\nsource: x\n",
        "clusters/dev/kustomization.yaml": "resources: []\n",
        "clusters/prod/kustomization.yaml": "resources: []\n",
        "clusters/prod/cluster.yaml": (
            "kubeconfig: kube/prod.yaml\ncontext: eks\nwave: 1\n"
            "apply:\n  timeout: 2m30s\n  prune: false\n  protectedKinds: [Namespace]\n"
            "  replace: never\n"
        ),
    })
    stack = load_stack(tmp_path)
    dev = load_cluster(stack, "dev")
    assert dev.policy.prune is True and dev.policy.timeout == 300
    prod = load_cluster(stack, "prod")
    assert prod.kubeconfig == tmp_path / "kube" / "prod.yaml"
    assert prod.policy.timeout == 150 and prod.policy.prune is False
    assert prod.policy.protected_kinds == ("Namespace",)
    assert (dev.policy.replace, prod.policy.replace) == ("auto", "never")
    assert [c.name for c in select_clusters(stack, [], all_=True)] == ["dev", "prod"]


def test_unknown_cluster_lists_the_known_ones(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource: x\n",
                      "clusters/dev/kustomization.yaml": "resources: []\n"})
    with pytest.raises(ConfigError, match="Clusters in this repo: dev"):
        load_cluster(load_stack(tmp_path), "prod")


def test_cluster_yaml_nested_unknown_key(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource: x\n",
                      "clusters/dev/kustomization.yaml": "resources: []\n",
                      "clusters/dev/cluster.yaml": "apply:\n  prun: true\n"})
    with pytest.raises(ConfigError, match=r"cluster.yaml:2: unknown key 'apply.prun'"):
        load_cluster(load_stack(tmp_path), "dev")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300),
                                               ("1h30m", 5400), ("500ms", 0.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="1h30m"):
        parse_duration("five minutes")


def test_cluster_yaml_replace_takes_auto_or_never(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.yaml": "name: a\nsource: x\n",
                      "clusters/dev/kustomization.yaml": "resources: []\n",
                      "clusters/dev/cluster.yaml": "apply:\n  replace: always\n"})
    with pytest.raises(ConfigError, match=r"cluster.yaml:2") as e:
        load_cluster(load_stack(tmp_path), "dev")
    assert "auto" in str(e.value) and "never" in str(e.value)
