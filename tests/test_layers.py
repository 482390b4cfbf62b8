"""The import layers of gitops/ (CONTRIBUTING.md, "Layers"), checked on the source: every
import counts, also those inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitops"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imported(name: str, path: Path) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def _graph() -> dict[str, set[str]]:
    """module -> the gitops modules it imports (a package's __init__ counts for its
    modules, as Python runs it)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps: set[str] = set()
        for imported in _imported(name, path):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in MODULES and prefix != name:
                    deps.add(prefix)
        graph[name] = deps
    return graph


def _closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_apply_imports_nothing_that_imports_apply() -> None:
    graph = _graph()
    importers = {m for m, deps in graph.items() if not _in(m, "gitops.apply")
                 and any(_in(d, "gitops.apply") for d in deps)}
    assert importers, "nothing imports gitops.apply: the test would check nothing"
    for name in (m for m in MODULES if _in(m, "gitops.apply")):
        reached = _closure(graph, name)
        assert not reached & importers, (name, sorted(reached & importers))


def test_kube_imports_no_other_layer_of_stackctl() -> None:
    graph = _graph()
    allowed = {"gitops", "gitops.errors", "gitops.resource", "gitops.yamlio"}
    for name in (m for m in MODULES if _in(m, "gitops.kube")):
        outside = {d for d in _closure(graph, name) if not _in(d, "gitops.kube")}
        assert outside <= allowed, (name, sorted(outside - allowed))


def test_only_gitops_kube_names_the_kubernetes_clients_exceptions_or_urllib3() -> None:
    offenders = []
    for name, path in MODULES.items():
        if _in(name, "gitops.kube"):
            continue
        for imported in _imported(name, path):
            if imported.startswith(("urllib3", "kubernetes.client.exceptions")):
                offenders.append((name, imported))
        if "ApiException" in path.read_text(encoding="utf-8"):
            offenders.append((name, "ApiException"))
    assert not offenders


def test_the_graph_sees_function_level_imports() -> None:
    # gitops.cli.apply imports the core inside its commands only.
    assert "gitops.apply" in _graph()["gitops.cli.apply"]
