"""Render per cluster: run kustomize on clusters/<name>, normalise its output, order it,
cache it by content, and hand it out as objects with their identity.

    render_cluster(stack, cluster, *, kustomize=None, use_cache=True) -> Rendered
    render_clusters(stack, clusters, *, ref=None, jobs=None, use_cache=True) -> {name: Rendered}
    render_path(path, *, name=None, kustomize=None, use_cache=True) -> Rendered
    write_rendered(rendered, out_dir, *, split=False) -> list[Path]

Normal form (docs/render.md): a header comment (cluster, source commit, kustomize version),
then the objects as `---`-separated documents, ordered by KIND_ORDER (gitops.kinds), kind, group,
namespace and name. Each object keeps kustomize's own text and field order: kustomize (kyaml)
serialises deterministically, keeping the field order of the input files, so the same
inputs give byte-identical output without a second YAML dump. An object's body is parsed
with libyaml once, when first asked for (`RenderedObject.body`).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops import rendercache, renderkey
from gitops.errors import ConfigError, KustomizeError, RenderError, UserError
from gitops.kinds import kind_rank
from gitops.kustomize import (
    BUILD_FLAGS,
    Inputs,
    Kustomize,
    KustomizeBuildError,
    find_kustomization,
    find_kustomize,
    walk,
)
from gitops.linkfence import enclosing_repository
from gitops.origin import duplicate_error, origin
from gitops.paths import write_atomic
from gitops.resource import ResourceId, split_api_version
from gitops.sops.mirror import install_cleanup
from gitops.sops.policy import ClearText, SecretsPolicy, policy_in_commit, policy_of
from gitops.stack import CLUSTERS_DIR, Stack

if TYPE_CHECKING:  # gitops.cluster reads YAML configuration: not on a cached render's path
    from gitops.cluster import Cluster

Progress = Callable[[str], None]


def load_safe(text: str, **kw: Any) -> Any:
    """gitops.yamlio.load_safe, imported when first called: a cached render parses nothing
    and so does not load the YAML libraries."""
    from gitops import yamlio

    return yamlio.load_safe(text, **kw)


@dataclass(frozen=True)
class RenderedObject:
    """One rendered object: identity, apiVersion, its normalised text and (parsed lazily,
    once) its body as plain data. Treat `body` as read-only; deepcopy it to edit."""

    id: ResourceId
    api_version: str
    yaml: str
    _body: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            data = load_safe(self.yaml, path=f"the render of {self.id}")
            object.__setattr__(self, "_body", data if isinstance(data, dict) else {})
        assert self._body is not None
        return self._body

    @property
    def kind(self) -> str:
        return self.id.kind


@dataclass(frozen=True)
class Rendered:
    cluster: str
    objects: tuple[RenderedObject, ...]
    text: str  # the whole normalised file, header included
    warnings: tuple[str, ...]
    kustomize_version: str
    cache_hit: bool
    source: str | None = None  # the git commit, '<commit>+changes', or None outside git
    key: str = ""  # the cache key: equal keys mean equal inputs
    # The SOPS files this render decrypted (as messages name them), and the secret values
    # they hold: give them to the redactor of anything that prints this render.
    decrypted: tuple[str, ...] = ()
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    # Secrets committed in clear, when the render was asked to look (secrets.require: sops).
    clear_text: tuple[ClearText, ...] = ()

    def bodies(self) -> list[dict[str, Any]]:
        return [o.body for o in self.objects]


class RemoteReferenceError(KustomizeError):
    """A kustomization pulls a remote base: a render never reaches the network."""


# ---------------------------------------------------------------------------------------
# Normalisation

_DOC_SEP = re.compile(r"^---[ \t]*$\n?", re.M)
_TOP = {k: re.compile(rf"^{k}:[ ]*(.*)$", re.M) for k in ("apiVersion", "kind")}
_META = re.compile(r"^metadata:[ ]*\n((?:(?:[ ].*)?\n)*)", re.M)
_META_KEY = {k: re.compile(rf"^  {k}:[ ]*(.*)$", re.M) for k in ("name", "namespace")}
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


def _plain(m: re.Match[str] | None) -> str | None:
    """The value of a `key: value` line if it is a plain scalar that reads the same to a
    YAML parser (no quotes, comments, flow or block syntax); None otherwise."""
    if m is None:
        return ""
    v = m.group(1).strip()
    return v if _PLAIN.fullmatch(v) and v not in ("null", "Null", "NULL", "~") else None


def _identity(doc: str) -> tuple[str, str, str, str] | None:
    """(apiVersion, kind, namespace, name) read from kustomize's block-style text without a
    parse; None when the text is not in the simple form this reader vouches for."""
    api, kind = _plain(_TOP["apiVersion"].search(doc)), _plain(_TOP["kind"].search(doc))
    meta = _META.search(doc)
    if not api or not kind or meta is None or "generateName:" in meta.group(1):
        return None
    block = meta.group(1)
    name = _plain(_META_KEY["name"].search(block))
    ns = _plain(_META_KEY["namespace"].search(block))
    if not name or ns is None:
        return None
    return api, kind, ns, name


def _sort_key(o: RenderedObject) -> tuple[int, str, str, str, str, str]:
    i = o.id
    return kind_rank(i.kind), i.kind, i.group, i.namespace, i.name, o.api_version


def normalise(stdout: str, *, what: str,
              contents: Sequence[tuple[str, bytes | None]] = ()) -> list[RenderedObject]:
    """kustomize's output as ordered objects; identity errors name the input files that
    hold the object (searched in `contents`, the render's inputs)."""
    objects: list[RenderedObject] = []
    for raw in _DOC_SEP.split(stdout):
        head = raw.lstrip()
        if not head or (head.startswith("#") and all(
                ln.lstrip().startswith("#") or not ln.strip() for ln in raw.splitlines())):
            continue  # an empty or comment-only document
        doc = raw if raw.endswith("\n") else raw + "\n"
        ident = _identity(doc)
        body: dict[str, Any] | None = None
        if ident is None:
            data = load_safe(doc, path=f"kustomize's output for {what}")
            body = data if isinstance(data, dict) else {}
            meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            assert isinstance(meta, dict)
            kind, name = str(body.get("kind") or ""), str(meta.get("name") or "")
            if not kind or not name:
                missing = "kind" if not kind else "metadata.name"
                raise RenderError(
                    f"{what} renders an object without {missing} "
                    f"({_describe(body)}){origin(contents, kind, name)}.",
                    hint=f"Give the object a {missing} in the file it comes from.")
            ident = (str(body.get("apiVersion") or ""), kind,
                     str(meta.get("namespace") or ""), name)
        api, kind, ns, name = ident
        rid = ResourceId(group=split_api_version(api)[0], kind=kind, namespace=ns, name=name)
        objects.append(RenderedObject(id=rid, api_version=api, yaml=doc, _body=body))
    objects.sort(key=_sort_key)
    for a, b in itertools.pairwise(objects):
        if a.id == b.id:
            raise RenderError(
                f"{what} renders {a.id} twice (as {a.api_version} and {b.api_version})"
                f"{origin(contents, a.id.kind, a.id.name)}.",
                hint="An object's identity (group, kind, namespace, name) must be unique in "
                "a cluster: remove one of them or give it another name.")
    return objects


def _describe(body: dict[str, Any]) -> str:
    text = " ".join(f"{k}={body[k]!r}" for k in ("apiVersion", "kind") if k in body)
    return text or "no apiVersion or kind"


def _to_entry(objects: Sequence[RenderedObject], version: str,
              warnings: tuple[str, ...]) -> rendercache.Entry:
    parts: list[str] = []
    index = []
    pos = 0
    for o in objects:
        parts.append("---\n")
        pos += 4
        parts.append(o.yaml)
        i = o.id
        index.append((o.api_version, i.group, i.kind, i.namespace, i.name, pos,
                      pos + len(o.yaml)))
        pos += len(o.yaml)
    return rendercache.Entry(kustomize_version=version, text="".join(parts),
                             index=tuple(index), warnings=warnings)


def _from_entry(entry: rendercache.Entry) -> tuple[RenderedObject, ...]:
    t = entry.text
    return tuple(
        RenderedObject(id=ResourceId(group=g, kind=k, namespace=ns, name=n),
                       api_version=a, yaml=t[s:e])
        for a, g, k, ns, n, s, e in entry.index)


def header(name: str, source: str | None, version: str) -> str:
    if source is None:
        src = "not in git"
    elif source.endswith("+changes"):
        src = f"git commit {source.removesuffix('+changes')} with uncommitted changes"
    else:
        src = f"git commit {source}"
    return (f"# Rendered by stackctl: cluster {name}\n"
            f"# source: {src}\n"
            f"# kustomize: {version}\n"
            "# Generated: do not edit; run 'stackctl render'. Order: kind (docs/render.md), "
            "namespace, name.\n")


# ---------------------------------------------------------------------------------------
# Rendering


def _kustomize(k: Kustomize | str | Path | None) -> Kustomize:
    return k if isinstance(k, Kustomize) else find_kustomize(k)


def _check_remote(inputs: Inputs, what: str, base: Path) -> None:
    if not inputs.remote:
        return
    lines = "; ".join(
        f"{os.path.relpath(r.kustomization, base)} ({r.field}): {r.url}" for r in inputs.remote)
    raise RemoteReferenceError(
        f"{what} pulls remote bases, and a render never reaches the network: {lines}.",
        hint="Remote bases of an imported release are vendored by 'stackctl vendor import' "
        "and 'stackctl upgrade' (under vendor/NAME/_remotes/, through stack.yaml's mirrors:); "
        "a remote you added yourself, import as its own vendored source ('stackctl vendor "
        "import --name NAME --source https://github.com/ORG/REPO --ref TAG') and point the "
        "kustomization at its path under vendor/.")


@dataclass(frozen=True)
class _Keys:
    """How a render's cache key is computed: from the working tree or from a commit."""

    label: str  # the cluster folder, as its remembered reaches are filed
    compute: Callable[[renderkey.Reach], renderkey.Keyed]
    source: Callable[[renderkey.Keyed], str | None]


def _worktree_keys(path: Path, k: Kustomize,
                   wt: renderkey.WorktreeInputs | None = None) -> _Keys:
    wt = wt or renderkey.WorktreeInputs(path)
    return _Keys(label=wt.label(path), source=wt.source,
                 compute=lambda reach: wt.key(path, reach, kustomize_id=k.identity,
                                              flags=BUILD_FLAGS))


def _cached(keys: _Keys) -> tuple[renderkey.Keyed, rendercache.Entry] | None:
    """The cached render under a remembered reach of this cluster folder, without walking
    the kustomization graph (renderkey's docstring says why that is exact)."""
    for i, reach in enumerate(renderkey.remembered(keys.label)):
        try:
            keyed = keys.compute(reach)
        except (renderkey.Uncacheable, UserError, OSError):
            return None
        entry = rendercache.load(keyed.key)
        if entry is not None:
            if i:
                renderkey.remember(keys.label, reach)  # most recent first
            return keyed, entry
    return None


def _rendered(label: str, entry: rendercache.Entry, objects: tuple[RenderedObject, ...],
              k: Kustomize, *, hit: bool, source: str | None, key: str) -> Rendered:
    return Rendered(cluster=label, objects=objects, text=header(label, source, k.version)
                    + entry.text, warnings=entry.warnings, kustomize_version=k.version,
                    cache_hit=hit, source=source, key=key)


def render_path(path: Path, *, name: str | None = None,
                kustomize: Kustomize | str | Path | None = None, use_cache: bool = True,
                source: str | None = None, base: Path | None = None,
                policy: SecretsPolicy | None = None, _keys: _Keys | None = None) -> Rendered:
    """Render any kustomization directory. `name` labels it in messages and the header;
    `source` is the commit for the header (default: found from git for the working tree);
    `base` is the folder paths in messages are relative to (default: `path`); `policy`:
    when it requires SOPS, the render lists (and warns about) clear-text Secrets."""
    path = Path(os.path.normpath(Path(path).absolute()))
    label = name or path.name
    what = f"cluster {label}" if name else str(path)
    k = _kustomize(kustomize)
    keys = _keys or _worktree_keys(path, k)
    check = policy is not None and policy.require_sops  # looking needs the walk
    # A render of SOPS files is never served from here (its entry is flagged): below, once
    # they are decrypted.
    if use_cache and not check and (found := _cached(keys)) is not None:
        src = source if source is not None else keys.source(found[0])
        return _rendered(label, found[1], _from_entry(found[1]), k, hit=True, source=src,
                         key=found[0].key)
    inputs = walk(path, boundary=enclosing_repository(base or path))
    _check_remote(inputs, what, base or path)
    reach = renderkey.Reach.of(inputs)
    try:
        keyed: renderkey.Keyed | None = keys.compute(reach)
    except renderkey.Uncacheable:
        keyed = None  # rendered, never cached
    from gitops.sops.build import render_secrets  # YAML and cryptography: not when cached

    secrets = render_secrets(inputs, base or path, policy)
    # From here on, an error quoting a decrypted value is scrubbed before it leaves.
    with secrets.scrubbing():
        sops = secrets.inputs is not None
        seal = secrets.seal(keyed.key) if keyed is not None else None
        cacheable = use_cache and keyed is not None and secrets.cacheable(seal)
        cached = rendercache.load(keyed.key, sops=sops, seal=seal) if cacheable and keyed else None
        hit = cached is not None
        if cached is not None:
            entry, objects = cached, _from_entry(cached)
        elif secrets.before_build:  # kustomize reads decrypted files, from a copy in RAM
            if source is None:
                source = keys.source(keyed) if keyed is not None else _changed_head(path)
            try:
                out = secrets.build(k, path, what=what, files=[r for r, _ in inputs.relative()],
                                    inputs=inputs)
            except KustomizeBuildError as e:
                e = _without_secrets(e, rendercache.read_inputs(inputs.relative()))
                raise _relative_to(e, path, base) from e
            objects = _normalise(out.stdout, what, inputs)
            entry = _to_entry(objects, k.version, out.warnings)
            if cacheable and keyed is not None:
                rendercache.store(keyed.key, entry, sops=True, seal=seal)
        else:
            # kustomize starts once the walk has checked the graph (remote references, links
            # out of the repository); the `source` line (pygit2) is found while it runs.
            running = k.start(path)
            try:
                if source is None:
                    source = keys.source(keyed) if keyed is not None else _changed_head(path)
            except BaseException:
                running.stop()
                raise
            try:
                out = running.result(what=what, files=[r for r, _ in inputs.relative()])
            except KustomizeBuildError as e:
                contents = rendercache.read_inputs(inputs.relative())
                e = _without_secrets(e, contents)
                raise duplicate_error(e, what, contents, path, base) \
                    or _relative_to(e, path, base) from e
            objects = _normalise(out.stdout, what, inputs)
            entry = _to_entry(objects, k.version, out.warnings)
            if cacheable and keyed is not None:
                rendercache.store(keyed.key, entry, sops=sops)
        if use_cache and keyed is not None:
            renderkey.remember(keys.label, reach)
        if source is None:
            source = keys.source(keyed) if keyed is not None else _changed_head(path)
        r = _rendered(label, entry, objects, k, hit=hit, source=source,
                      key=keyed.key if keyed is not None else "")
        if not sops and not secrets.clear_text:
            return r
        # The plaintext of whole Secret manifests goes into kustomize's output now.
        from gitops.sops.output import has_encrypted

        objects = tuple(replace(o, yaml=secrets.plaintext(o.yaml, what=f"{what} ({o.id})"),
                                _body=None) if has_encrypted(o.yaml) else o for o in objects)
        return replace(r, objects=objects, text=header(label, source, k.version) + "".join(
            "---\n" + o.yaml for o in objects), warnings=r.warnings + secrets.warnings(),
            decrypted=secrets.names(), secrets=secrets.secrets(), clear_text=secrets.clear_text)


def _normalise(stdout: str, what: str, inputs: Inputs) -> tuple[RenderedObject, ...]:
    """normalise() without reading the inputs; they are read only to name the files an
    identity error comes from."""
    try:
        return tuple(normalise(stdout, what=what))
    except RenderError:
        contents = rendercache.read_inputs(inputs.relative())
        return tuple(normalise(stdout, what=what, contents=contents))


def _changed_head(path: Path) -> str | None:
    from gitops.git import head_commit_of

    head = head_commit_of(path)
    return None if head is None else f"{head}+changes"


def _without_secrets(e: KustomizeBuildError, contents: Sequence[tuple[str, bytes | None]]
                     ) -> KustomizeBuildError:
    """kustomize's message with the secret values of the render's inputs redacted: it
    quotes a secretGenerator literal it cannot parse ("invalid literal source
    GEN_PASSWORD:value, expected key=value")."""
    from gitops.redact import Redactor
    from gitops.secretvalues import learn_secret_values

    redactor = Redactor.from_config()  # default names, the run's salt ($STACKCTL_REDACT_SALT)
    learn_secret_values(redactor, {rel: data for rel, data in contents if data is not None})
    detail = redactor.text(e.detail, pairs="=")
    if detail == e.detail:
        return e
    return KustomizeBuildError(what=e.what, command=e.command,
                               exit_code=e.exit_code_of_command, detail=detail, file=e.file)


def _relative_to(e: KustomizeBuildError, path: Path, base: Path | None) -> KustomizeBuildError:
    """The error with its file named from `base` (the deployment repo's root)."""
    f = e.file
    if base is None or f is None or "://" in f or " or " in f or Path(f).is_absolute():
        return e
    shown = os.path.relpath(os.path.normpath(path / f), base)
    return KustomizeBuildError(what=e.what, command=e.command,
                               exit_code=e.exit_code_of_command, detail=e.detail, file=shown)


def _cluster_dir(root: Path, name: str, stack_root: Path) -> Path:
    d = root / CLUSTERS_DIR / name
    if not any((d / f).is_file() for f in
               ("kustomization.yaml", "kustomization.yml", "Kustomization")):
        raise ConfigError(
            f"no cluster named {name!r}: {d}/kustomization.yaml does not exist.",
            hint="Clusters are the folders clusters/<name>/ with a kustomization.yaml; "
            f"known here: {', '.join(_known(stack_root)) or 'none'}.")
    return d


def _known(root: Path) -> list[str]:
    from gitops.cluster import list_clusters

    try:
        return list_clusters(Stack(root=root, name="x", source="."))
    except (OSError, UserError):
        return []


def render_cluster(stack: Stack, cluster: str | Cluster, *,
                   kustomize: Kustomize | str | Path | None = None,
                   use_cache: bool = True) -> Rendered:
    """Render clusters/<name> of the working tree."""
    name = cluster if isinstance(cluster, str) else cluster.name
    path = _cluster_dir(stack.root, name, stack.root)
    if not isinstance(cluster, str) and find_kustomization(cluster.path) is not None:
        path = cluster.path
    install_cleanup()  # from the main thread: SIGTERM removes decrypted copies in RAM
    return render_path(path, name=name, kustomize=kustomize, use_cache=use_cache,
                       base=stack.root, policy=policy_of(stack.root))


def render_each(stack: Stack, clusters: Sequence[str], *, ref: str | None = None,
                jobs: int | None = None, use_cache: bool = True,
                kustomize: Kustomize | str | Path | None = None,
                progress: Progress | None = None,
                policy: SecretsPolicy | None = None) -> dict[str, Rendered | UserError]:
    """Render clusters in parallel (threads running kustomize; at most `jobs`, default the
    number of cores); each cluster's result or its error, in the order given. No names:
    every cluster of the tree (at `ref` when given). `policy`: the secrets policy (default:
    the working tree's stack.yaml, or the commit's at `ref`)."""
    say = progress or (lambda _m: None)
    k = _kustomize(kustomize)
    install_cleanup()  # from the main thread: SIGTERM removes decrypted copies in RAM

    def run(root: Path, source: str | None) -> dict[str, Rendered | UserError]:
        names = list(dict.fromkeys(clusters)) or _known(root)
        workers = max(1, min(len(names) or 1, jobs or os.cpu_count() or 1))
        wt = renderkey.WorktreeInputs(root)  # the index, read once for every cluster
        rules = policy if policy is not None else policy_of(root)

        def one(name: str) -> Rendered | UserError:
            try:
                path = _cluster_dir(root, name, stack.root)
                r = render_path(path, name=name, kustomize=k, use_cache=use_cache,
                                source=source, base=root, policy=rules,
                                _keys=_worktree_keys(Path(os.path.normpath(path.absolute())),
                                                     k, wt))
            except UserError as e:
                say(f"{name}: failed")
                return e
            say(f"{name}: {len(r.objects)} objects" + (" (cached)" if r.cache_hit else ""))
            return r

        if workers == 1:
            return {n: one(n) for n in names}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(zip(names, pool.map(one, names), strict=True))

    if ref is None:
        return run(stack.root, None)
    return _render_at(stack, list(dict.fromkeys(clusters)), ref, k, jobs=jobs,
                      use_cache=use_cache, say=say, policy=policy)


def _render_at(stack: Stack, names: list[str], ref: str, k: Kustomize, *, jobs: int | None,
               use_cache: bool, say: Progress,
               policy: SecretsPolicy | None) -> dict[str, Rendered | UserError]:
    """Clusters at a commit: each cluster's key is computed from git's objects, so a cached
    cluster costs no export; the commit's tree is exported once, when a cluster misses."""
    import contextlib
    import threading

    from gitops.git import exported, open_with_prefix, resolve_commit

    repo, prefix = open_with_prefix(stack.root)
    commit = str(resolve_commit(repo.raw, ref).id)
    if policy is None:  # the commit's own stack.yaml
        policy = policy_in_commit(repo.raw, commit,
                                  f"{prefix}/stack.yaml" if prefix else "stack.yaml")
    at = renderkey.CommitInputs(repo, commit)
    lock = threading.Lock()  # one pygit2 repository, read from every thread
    clusters_dir = f"{prefix}/{CLUSTERS_DIR}" if prefix else CLUSTERS_DIR

    def has_cluster(name: str) -> bool:
        return any(at.resolve(f"{clusters_dir}/{name}/{f}") is not None
                   for f in ("kustomization.yaml", "kustomization.yml", "Kustomization"))

    if not names:
        with lock:
            top = at.resolve(clusters_dir)
            names = sorted(n for n, (mode, _) in
                           (repo.tree_entries(top[1]).items() if top else ())
                           if mode == 0o040000 and has_cluster(n))

    def keys_of(name: str) -> _Keys:
        cluster = f"{clusters_dir}/{name}"

        def compute(reach: renderkey.Reach) -> renderkey.Keyed:
            with lock:
                return at.key(cluster, reach, kustomize_id=k.identity, flags=BUILD_FLAGS)

        return _Keys(label=cluster, compute=compute, source=lambda _keyed: commit)

    results: dict[str, Rendered | UserError] = {}
    misses = []
    for name in names:
        # A cluster whose policy asks for clear-text Secrets is looked at in the tree, and a
        # cached render of SOPS files is served only once they are decrypted: both need the
        # exported tree (the flagged entry misses here).
        if use_cache and not policy.require_sops:
            found = _cached(keys_of(name))
            if found is not None:
                keyed, entry = found
                results[name] = _rendered(name, entry, _from_entry(entry), k, hit=True,
                                          source=commit, key=keyed.key)
                say(f"{name}: {len(entry.index)} objects (cached)")
                continue
        misses.append(name)
    if misses:
        with contextlib.ExitStack() as scope:
            snap = scope.enter_context(exported(stack.root, commit))

            def one(name: str) -> Rendered | UserError:
                try:
                    r = render_path(_cluster_dir(snap.root, name, stack.root), name=name,
                                    kustomize=k, use_cache=use_cache, source=commit,
                                    base=snap.root, policy=policy, _keys=keys_of(name))
                except UserError as e:
                    say(f"{name}: failed")
                    return e
                say(f"{name}: {len(r.objects)} objects" + (" (cached)" if r.cache_hit else ""))
                return r

            from concurrent.futures import ThreadPoolExecutor

            workers = max(1, min(len(misses), jobs or os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results.update(zip(misses, pool.map(one, misses), strict=True))
    return {n: results[n] for n in names}


def render_clusters(stack: Stack, clusters: Sequence[str], *, ref: str | None = None,
                    jobs: int | None = None, use_cache: bool = True,
                    kustomize: Kustomize | str | Path | None = None,
                    progress: Progress | None = None,
                    policy: SecretsPolicy | None = None) -> dict[str, Rendered]:
    """Render clusters (at `ref`, a git commit, when given: no checkout); raises the first
    cluster's error, listing the others that failed."""
    results = render_each(stack, clusters, ref=ref, jobs=jobs, use_cache=use_cache,
                          kustomize=kustomize, progress=progress, policy=policy)
    failed = {n: r for n, r in results.items() if isinstance(r, UserError)}
    if len(failed) == 1:
        raise next(iter(failed.values()))
    if failed:
        first = next(iter(failed.values()))
        raise RenderError(
            f"{len(failed)} clusters failed to render: "
            + " ".join(f"({i}) {e.message}" for i, e in enumerate(failed.values(), 1)),
            hint=first.hint)
    return {n: r for n, r in results.items() if not isinstance(r, UserError)}


# ---------------------------------------------------------------------------------------
# Output files

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def split_names(rendered: Rendered) -> list[str]:
    """File names of --split: <kind-order>-<kind>-<namespace>-<name>.yaml ('_' for no
    namespace); objects whose names would collide (same kind in two groups) get the group."""
    def base(o: RenderedObject, group: bool) -> str:
        i = o.id
        kind = f"{i.kind}.{i.group}" if group and i.group else i.kind
        parts = (f"{kind_rank(i.kind):03d}", kind, i.namespace or "_", i.name)
        return _UNSAFE.sub("_", "-".join(parts))

    plain = [base(o, False) for o in rendered.objects]
    clash = {n for n in plain if plain.count(n) > 1} if len(set(plain)) < len(plain) else set()
    return [(base(o, True) if n in clash else n) + ".yaml"
            for o, n in zip(rendered.objects, plain, strict=True)]


def _holds(path: Path, data: bytes, *, private: bool = False) -> bool:
    """Whether the file at `path` holds exactly `data` (its size is checked first) and, when
    `private` (it holds a Secret), is readable by its owner alone, as stackctl writes it."""
    try:
        st = path.stat()
        if private and st.st_mode & 0o077:
            return False
        return st.st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _private(rendered: Rendered, o: RenderedObject) -> bool:
    """A Secret's file, or any file of a render holding decrypted values (a patch may have
    put one into a Deployment)."""
    return bool(rendered.decrypted) or o.kind in ("Secret", "SecretList")


def write_rendered(rendered: Rendered, out_dir: Path, *, split: bool = False) -> list[Path]:
    """Write <out>/<cluster>.yaml, or with `split` the folder <out>/<cluster>/ with one file
    per object. Both are written beside their target and renamed into place, so a reader
    (or a failed render) never sees a partial file. This is the one place stackctl writes
    decrypted SOPS values: such a render's split files are all 0600 (the folder is 0700)."""
    import shutil
    import tempfile

    out_dir = Path(out_dir)
    if not split:
        target = out_dir / f"{rendered.cluster}.yaml"
        secrets = bool(rendered.decrypted) or any(o.kind in ("Secret", "SecretList")
                                                   for o in rendered.objects)
        if _holds(target, rendered.text.encode("utf-8"), private=secrets):
            return [target]  # already what the render writes: not written again
        try:
            write_atomic(target, rendered.text)
        except OSError as e:
            raise RenderError(f"cannot write {target}: {e.strerror or e}.",
                              hint="Choose another folder with --out.") from e
        return [target]
    target = out_dir / rendered.cluster
    head = rendered.text[: len(rendered.text) - len("".join(
        "---\n" + o.yaml for o in rendered.objects))]
    names = split_names(rendered)
    texts = [(head + o.yaml).encode("utf-8") for o in rendered.objects]
    try:
        unchanged = sorted(p.name for p in target.iterdir()) == sorted(names) and all(
            _holds(target / n, t, private=_private(rendered, o))
            for o, n, t in zip(rendered.objects, names, texts, strict=True))
    except OSError:
        unchanged = False
    if unchanged:
        return [target / n for n in names]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{rendered.cluster}."))
        for o, n, t in zip(rendered.objects, names, texts, strict=True):
            # A Secret's file is the owner's alone, as the whole-cluster file is (write_atomic).
            fd = os.open(tmp / n, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600 if _private(rendered, o) else 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(t)
        old = None
        if target.exists():
            old = out_dir / f".{rendered.cluster}.old-{os.getpid()}"
            target.replace(old)
        tmp.replace(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        if "tmp" in locals():
            shutil.rmtree(tmp, ignore_errors=True)
        raise RenderError(f"cannot write {target}: {e.strerror or e}.",
                          hint="Choose another folder with --out.") from e
    return [target / n for n in names]
