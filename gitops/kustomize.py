"""The kustomize binary: finding it, checking its version, running it without network access,
and walking the kustomization graph it will read (for remote references and cache keys).

Lookup order of the binary: `--kustomize PATH`, $STACKCTL_KUSTOMIZE, the sandbox build
(`make kustomize`), `kustomize` on PATH. The minimum version is MIN_VERSION (5.0.0: the v5
line changed the output of some deprecated fields and dropped `kustomize cfg`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.errors import KustomizeError, YamlError
from gitops.linkfence import Fence, enclosing_repository
from gitops.paths import cache_dir, pinned_kustomize, sandbox_bin_dir, write_atomic

MIN_VERSION = (5, 0, 0)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
HOW_TO_GET = (
    "Run 'make kustomize' (it builds kustomize v5 from Go modules into the sandbox cache), "
    "or point stackctl at a kustomize v5 binary with --kustomize PATH or $STACKCTL_KUSTOMIZE."
)
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


class KustomizeBuildError(KustomizeError):
    """`kustomize build` failed: the command, its exit code, the first useful line of its
    stderr and the file that line names."""

    def __init__(self, *, what: str, command: Sequence[str], exit_code: int,
                 detail: str, file: str | None) -> None:
        self.what = what
        self.command = tuple(command)
        self.exit_code_of_command = exit_code
        self.detail = detail
        self.file = file
        where = f" (file: {file})" if file else ""
        super().__init__(
            f"kustomize failed for {what}: {detail}{where}. Command: '{' '.join(command)}' "
            f"exited with code {exit_code}.",
            hint="Fix the kustomization or the file it names, then render again.",
        )


@dataclass(frozen=True)
class Kustomize:
    """A checked kustomize binary."""

    path: Path
    version: str  # as the binary prints it, e.g. v5.8.2
    digest: str = ""  # sha256 of the binary: two builds of one version are told apart

    @property
    def identity(self) -> str:
        """What names this binary in a render's cache key: version and content digest."""
        return f"{self.version} sha256:{self.digest}"

    def build(self, directory: Path, *, what: str, files: Iterable[str] = ()) -> BuildOutput:
        """Run `kustomize build DIRECTORY` with a network-less environment. `files` (the
        render's input files, relative to DIRECTORY) help name the file of an error."""
        return self.start(directory).result(what=what, files=files)

    def start(self, directory: Path) -> Build:
        """Start `kustomize build DIRECTORY` (network-less) and return at once, so that the
        caller's own work overlaps kustomize's; `Build.result()` waits for it."""
        import subprocess  # not on a cached render's path

        cmd = [str(self.path), *BUILD_FLAGS, str(directory)]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, env=build_env())
        except OSError as e:
            raise KustomizeError(f"cannot run {self.path}: {e.strerror or e}.",
                                 hint=HOW_TO_GET) from e
        return Build(proc=proc, command=tuple(cmd), directory=directory)


@dataclass(frozen=True)
class Build:
    """A running `kustomize build`."""

    proc: Any  # subprocess.Popen[bytes]
    command: tuple[str, ...]
    directory: Path

    def result(self, *, what: str, files: Iterable[str] = ()) -> BuildOutput:
        out, err = self.proc.communicate()
        stderr = err.decode("utf-8", "replace")
        code = self.proc.returncode
        if code != 0:
            detail = first_useful_line(stderr) or f"no message (exit code {code})"
            raise KustomizeBuildError(
                what=what, command=self.command, exit_code=code, detail=detail,
                file=named_file(detail, self.directory, files),
            )
        return BuildOutput(stdout=out.decode("utf-8"), warnings=warnings_of(stderr))

    def stop(self) -> None:
        """Stop it (its result is not wanted) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@dataclass(frozen=True)
class BuildOutput:
    stdout: str
    warnings: tuple[str, ...]


# Plain `build`: no exec or alpha plugins, no helm (they would run programs or fetch charts).
BUILD_FLAGS = ("build",)

_found: dict[tuple[str, int, int], Kustomize] = {}


SUPPORTED = "v5.0.1 to v5.8.3"  # the v5 releases the Go module proxy has (v5.0.0 was retracted)


def _pin_hint(version: str) -> str:
    return (f"Build it with 'sandbox/build.sh kustomize {version}' (Go modules, into "
            f"{pinned_kustomize(version)}), or point --kustomize or $STACKCTL_KUSTOMIZE at a "
            f"kustomize {version} binary; or change the pin in stack.yaml with 'stackctl "
            f"upgrade --kustomize VERSION'. Supported: {SUPPORTED}.")


def find_kustomize(explicit: str | Path | None = None, *,
                   version: str | None = None) -> Kustomize:
    """The kustomize binary in lookup order, with its version checked (memoised per file).
    `version`: the release the stack pins (stack.yaml `kustomize:`): a binary given
    explicitly must be that release; otherwise the pinned build, the sandbox build or the
    one on PATH, whichever is that release."""
    if version is not None:
        return _find_pinned(explicit, version)
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("--kustomize", Path(explicit).expanduser()))
    elif os.environ.get("STACKCTL_KUSTOMIZE"):
        candidates.append(("$STACKCTL_KUSTOMIZE",
                           Path(os.environ["STACKCTL_KUSTOMIZE"]).expanduser()))
    else:
        built = sandbox_bin_dir() / "kustomize"
        if built.is_file():
            candidates.append(("the sandbox build", built))
        import shutil

        on_path = shutil.which("kustomize")
        if on_path:
            candidates.append(("PATH", Path(on_path)))
    if not candidates:
        raise KustomizeError(
            "no kustomize binary found (looked at --kustomize, $STACKCTL_KUSTOMIZE, "
            f"{sandbox_bin_dir() / 'kustomize'} and PATH).", hint=HOW_TO_GET)
    origin, path = candidates[0]
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise KustomizeError(f"the kustomize binary {path} given by {origin} does not exist "
                             "or is not executable.", hint=HOW_TO_GET)
    st = path.stat()
    real = str(path.resolve())
    key = (real, st.st_mtime_ns, st.st_size)
    if key not in _found:
        _found[key] = _identified(path, real, st)
    return _found[key]


def _find_pinned(explicit: str | Path | None, version: str) -> Kustomize:
    want = _VERSION.search(version)
    if want is None:
        raise KustomizeError(f"stack.yaml pins kustomize {version!r}, which is not a version "
                             "(vMAJOR.MINOR.PATCH).", hint=_pin_hint("v5.8.2"))
    wanted = "v" + ".".join(want.groups())
    if explicit or os.environ.get("STACKCTL_KUSTOMIZE"):
        k = find_kustomize(explicit)
        if k.version != wanted:
            origin = "--kustomize" if explicit else "$STACKCTL_KUSTOMIZE"
            raise KustomizeError(
                f"stack.yaml pins kustomize {wanted}, but {k.path} (given by {origin}) is "
                f"{k.version}: the renders would not be the ones the stack is reviewed with.",
                hint=_pin_hint(wanted))
        return k
    import shutil

    seen: list[str] = []
    for path in (pinned_kustomize(wanted), sandbox_bin_dir() / "kustomize",
                 Path(shutil.which("kustomize") or "/nonexistent")):
        if path.is_file() and os.access(path, os.X_OK):
            k = find_kustomize(path)
            if k.version == wanted:
                return k
            seen.append(f"{path} is {k.version}")
    found = f" ({'; '.join(seen)})" if seen else ""
    raise KustomizeError(f"stack.yaml pins kustomize {wanted}, and no such binary was "
                         f"found{found}.", hint=_pin_hint(wanted))


def _identified(path: Path, real: str, st: os.stat_result) -> Kustomize:
    """The binary with its version and digest, remembered on disk per file (path, size,
    mtime, ctime, inode) so that a command does not run `kustomize version` and hash 12 MB
    on every call; a replaced binary has other stat data and is checked again."""
    memo = cache_dir() / "kustomize-binaries.json"
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    seen = known.get(real)
    if isinstance(seen, dict) and seen.get("stat") == stamp:
        return Kustomize(path=path, version=str(seen["version"]), digest=str(seen["sha256"]))
    version = _check_version(path)
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise KustomizeError(f"cannot read {path}: {e.strerror or e}.", hint=HOW_TO_GET) from e
    k = Kustomize(path=path, version=version, digest=h.hexdigest())
    known[real] = {"stat": stamp, "version": version, "sha256": k.digest}
    with contextlib.suppress(OSError):  # a memo that cannot be written costs a re-check
        write_atomic(memo, json.dumps(known, indent=1, sort_keys=True))
    return k


def _check_version(path: Path) -> str:
    import subprocess
    try:
        proc = subprocess.run([str(path), "version"], capture_output=True, text=True,
                              check=False, env=hermetic_env(), timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KustomizeError(f"cannot run '{path} version': {e}.", hint=HOW_TO_GET) from e
    out = proc.stdout.strip()
    m = _VERSION.search(out)
    if proc.returncode != 0 or m is None:
        raise KustomizeError(
            f"'{path} version' did not print a version (exit code {proc.returncode}, output "
            f"{out[:80]!r}); stackctl needs kustomize >= {_fmt(MIN_VERSION)}.", hint=HOW_TO_GET)
    found = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if found < MIN_VERSION:
        raise KustomizeError(
            f"{path} is kustomize {_fmt(found)}; stackctl needs {_fmt(MIN_VERSION)} or newer.",
            hint=HOW_TO_GET)
    return f"v{_fmt(found)}"


def _fmt(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


def hermetic_env() -> dict[str, str]:
    """An environment in which kustomize (and a git it might start) cannot reach the
    network: every proxy points at a closed local port, git may only use file://, has no
    terminal to prompt on and no ssh. Remote references are rejected before this by
    walk(); this catches what slips through."""
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "XDG_CONFIG_HOME")}
    env.update({
        "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead,
        "http_proxy": dead, "https_proxy": dead, "all_proxy": dead,
        "NO_PROXY": "", "no_proxy": "",
        "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": "file", "GIT_SSH_COMMAND": "false",
        "GIT_CONFIG_NOSYSTEM": "1", "GOPROXY": "off",
    })
    return env


# kustomize allocates heavily: with Go's garbage collector running a quarter as often it
# uses about a fifth less CPU for the same output (peak memory ~320 MB instead of ~180 MB
# on Kubeflow's example; bench/bench_render.py). A GOGC of the caller's own wins.
GOGC = "400"


def build_env() -> dict[str, str]:
    """hermetic_env() for `kustomize build`, with the garbage collector's pace."""
    env = hermetic_env()
    env["GOGC"] = os.environ.get("GOGC") or GOGC
    return env


def warnings_of(stderr: str) -> tuple[str, ...]:
    """kustomize's warnings (one per kustomization file that uses a deprecated field),
    de-duplicated in order of first appearance."""
    seen: dict[str, None] = {}
    for line in stderr.splitlines():
        s = line.strip()
        if s.startswith("# Warning:"):
            seen.setdefault(s[len("# Warning:"):].strip(), None)
        elif s.lower().startswith("warning:"):
            seen.setdefault(s[len("warning:"):].strip(), None)
    return tuple(seen)


def first_useful_line(stderr: str) -> str:
    """The first error line of kustomize's stderr, without warnings, the `Error:` prefix and
    the repeated fallback kustomize appends after trying a file as a directory."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    for i, s in enumerate(lines):
        if not s or s.startswith("#") or s.lower().startswith("warning"):
            continue
        # An error that quotes a kustomization entry spans lines up to the closing "`:".
        if s.endswith("`"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("`")), i)
            s = " ".join(x for x in lines[i:end + 1] if x)
        s = s.removeprefix("Error:").strip()
        # kustomize tries a missing resource as a file, then as a directory, and prints
        # both: "accumulation err='<file error>': must build at directory: <dir error>".
        s = re.sub(r"accumulation err='(.*?)': must build at directory: .*$", r"\1", s)
        # A directory resource is first tried as a file: drop that attempt's message.
        return re.sub(r"accumulation err='accumulating resources from '[^']*': '[^']*' must "
                      r"resolve to a file': recursed accumulation of path ('[^']*'): ",
                      r"in \1: ", s)
    return ""


# Not the path part of a URL, nor the '/name' of a resource id (ConfigMap.v1.[noGrp]/x).
_ABS = re.compile(r"(?<![\w:/.\]])(/[^\s':,\"]+)")
_QUOTED = re.compile(r"'([^'\s]+)'|in File: (\S+)|path: \"?([^\s\"`\]]+)")


def named_file(message: str, directory: Path, files: Iterable[str]) -> str | None:
    """The file a kustomize error names, relative to the rendered directory when possible.
    kustomize names files by absolute path or by their path relative to the kustomization
    that lists them (matched against the render's input files); nested errors name the
    outer directories first, so the innermost (last) file wins."""
    base = directory.resolve()
    known = sorted(files)
    found: list[tuple[int, str, bool]] = []  # (position, name, is a file)
    for m in _ABS.finditer(message):
        p = Path(m.group(1))
        try:
            rel = os.path.relpath(p, base)
        except ValueError:
            rel = str(p)
        found.append((m.start(), rel, p.is_file() or (bool(p.suffix) and not p.is_dir())))
    for m in _QUOTED.finditer(message):
        name = (m.group(1) or m.group(2) or m.group(3)).strip(".,")
        if name.startswith("/"):
            continue  # already seen as an absolute path
        hits = [f for f in known if f == name or f.endswith("/" + name)]
        if hits:
            shown = " or ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
            found.append((m.start(), shown, True))
        elif Path(name).suffix and not (base / name).is_dir():
            found.append((m.start(), name, True))
    files_named = [name for _, name, is_file in sorted(found) if is_file]
    return files_named[-1] if files_named else None


# ---------------------------------------------------------------------------------------
# The kustomization graph


@dataclass(frozen=True)
class RemoteRef:
    kustomization: Path
    field: str
    url: str


@dataclass(frozen=True)
class Inputs:
    """What a render reads: kustomization directories and every input file (absolute)."""

    root: Path
    directories: tuple[Path, ...]
    files: tuple[Path, ...]
    remote: tuple[RemoteRef, ...]
    # Referenced paths that are neither a folder nor a file (missing, most often): the walk
    # would reach more if one appeared, so the render cache's key covers them too.
    probes: tuple[Path, ...] = ()
    extra: tuple[Path, ...] = ()  # referenced files outside every walked folder

    def relative(self) -> list[tuple[str, Path]]:
        """(path relative to the root, absolute path), sorted by relative path."""
        return sorted((os.path.relpath(f, self.root), f) for f in self.files)


# Fields whose entries are local paths (files or kustomization directories) or remote URLs.
_LIST_FIELDS = ("resources", "bases", "components", "crds", "configurations",
                "patchesStrategicMerge", "generators", "transformers", "validators")
_PATH_ENTRY_FIELDS = ("patches", "patchesJson6902", "replacements")
_GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")
_HOST = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")


def is_remote(ref: str, base: Path) -> bool:
    """Whether kustomize would fetch this reference over the network: URLs, go-getter and
    git specs, `?ref=`, and host-named paths (github.com/org/repo/...) that are not local."""
    r = ref.strip()
    if "://" in r or r.startswith(("git::", "git@", "ssh:", "http:", "https:")):
        return True
    if "?ref=" in r or "?version=" in r or "?timeout=" in r or "?submodules=" in r:
        return True
    first = r.split("/", 1)[0]
    if "/" in r and _HOST.match(first):
        return not (base / r).exists()
    return False


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _refs(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, reference) for every path-like reference of a kustomization."""
    for fld in _LIST_FIELDS:
        for entry in doc.get(fld) or ():
            # Inline patches and inline generator configs are YAML text, not paths.
            if isinstance(entry, str) and "\n" not in entry and not entry.lstrip().startswith(
                    ("{", "apiVersion:")):
                yield fld, entry
    for fld in _PATH_ENTRY_FIELDS:
        for entry in doc.get(fld) or ():
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                yield fld, entry["path"]
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi", openapi["path"]
    for fld in _GENERATOR_FIELDS:
        for gen in doc.get(fld) or ():
            if not isinstance(gen, dict):
                continue
            for f in gen.get("files") or ():
                if isinstance(f, str):
                    yield fld, f.split("=", 1)[1] if "=" in f else f
            for f in [*(gen.get("envs") or ()), gen.get("env")]:
                if isinstance(f, str):
                    yield fld, f
    for chart in doc.get("helmCharts") or ():
        if isinstance(chart, dict) and isinstance(chart.get("repo"), str):
            yield "helmCharts", chart["repo"]
    globs = doc.get("helmGlobals")
    if isinstance(globs, dict) and isinstance(globs.get("chartHome"), str):
        yield "helmGlobals", globs["chartHome"]


def walk(root: Path, *, boundary: Path | None = None) -> Inputs:
    """Walk the kustomization graph from `root`: every kustomization directory reached by a
    path reference, and every file kustomize may read. Under kustomize's default load
    restrictor (LoadRestrictionsRootOnly) a kustomization reads files only below its own
    directory, so every file below every reached directory is an input (a superset: an
    unused file there only costs a cache miss, never a stale hit). Files referenced outside
    those directories (which kustomize would reject) are added too.

    Links are followed only while they stay inside `boundary` (default: the git work tree
    holding `root`, else `root`): a link out of it, and a FIFO or device file, is a
    RenderError before anything is read (gitops.linkfence)."""
    root = Path(os.path.normpath(Path(root).absolute()))
    if find_kustomization(root) is None:
        raise KustomizeError(
            f"{root} has no kustomization.yaml.",
            hint="A cluster is a folder clusters/<name>/ with a kustomization.yaml.")
    dirs: list[Path] = []
    seen: set[Path] = set()
    extra: set[Path] = set()
    probes: set[Path] = set()
    remote: list[RemoteRef] = []
    todo = [root]
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        dirs.append(d)
        kfile = find_kustomization(d)
        if kfile is None:
            continue  # kustomize reports a directory without a kustomization itself
        try:
            from gitops.yamlio import load_safe  # not on a cached render's path

            doc = load_safe(kfile.read_text(encoding="utf-8"), path=kfile)
        except YamlError:
            raise
        except (OSError, UnicodeDecodeError) as e:
            raise KustomizeError(f"cannot read {kfile}: {e}.") from e
        if not isinstance(doc, dict):
            continue
        for fld, ref in _refs(doc):
            if is_remote(ref, d):
                remote.append(RemoteRef(kfile, fld, ref))
                continue
            p = Path(os.path.normpath(d / ref))
            if p.is_dir():
                todo.append(p)
            elif p.is_file():
                extra.add(p)
            else:
                probes.add(p)
    # Strings, not Paths, below: this runs on every render, cached or not (~1,000 files).
    fence = Fence(boundary or enclosing_repository(root))
    files: set[str] = {str(p) for p in extra}
    for f in files:
        fence.check_file(f)
    walked: list[str] = []
    for ds in sorted(str(p) for p in seen):
        if any(ds == w or ds.startswith(w + os.sep) for w in walked):
            continue
        walked.append(ds)
        files.update(fence.files_below(ds))
    return Inputs(root=root, directories=tuple(dirs),
                  files=tuple(Path(f) for f in sorted(files)), remote=tuple(remote),
                  probes=tuple(sorted(probes)), extra=tuple(sorted(extra)))
