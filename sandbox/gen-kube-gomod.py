#!/usr/bin/env python3
"""Regenerate sandbox/kube/go.mod for a Kubernetes release.

k8s.io/kubernetes replaces its ~31 staging modules with ./staging paths, so it cannot be
required as is: every staging module is pinned to the matching v0.X.Y here, and the
release's own requirements are copied so that minimal version selection picks what it
was tested with. Usage: sandbox/gen-kube-gomod.py v1.34.4 && (cd sandbox/kube && go mod tidy)
"""

import json
import re
import subprocess
import sys
from pathlib import Path

version = sys.argv[1]
staging_version = "v0." + version.split(".", 1)[1]
info = json.loads(subprocess.run(
    ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
    check=True, capture_output=True, text=True).stdout)
src = Path(info["GoMod"]).read_text()
staging = [ln.split("=>")[0].strip() for ln in src.splitlines() if "=> ./staging" in ln]
reqs = []
for block in re.findall(r"require \((.*?)\)", src, re.S):
    for line in block.strip().splitlines():
        line = line.split("//")[0].strip()
        if line:
            mod, ver = line.split()
            reqs.append((mod, staging_version if mod in staging else ver))
out = [
    "// Built by `make sandbox`: the control-plane binaries of k8s.io/kubernetes and the",
    "// etcd server it was tested with. Regenerate the requirements and replaces from",
    "// the release's own go.mod (sandbox/gen-kube-gomod.py) when bumping the version.",
    "module stackctl.local/sandbox/kube", "", "go 1.24.0", "",
    "tool (",
    "\tk8s.io/kubernetes/cmd/kube-apiserver",
    "\tk8s.io/kubernetes/cmd/kube-controller-manager",
    "\tk8s.io/kubernetes/cmd/kube-scheduler",
    ")", "", "require (", f"\tk8s.io/kubernetes {version}",
    *(f"\t{m} {v}" for m, v in reqs), ")", "", "replace (",
    *(f"\t{m} => {m} {staging_version}" for m in staging), ")",
]
target = Path(__file__).resolve().parent / "kube" / "go.mod"
target.write_text("\n".join(out) + "\n")
print(f"wrote {target}; now run: (cd {target.parent} && go get go.etcd.io/etcd/server/v3 && go mod tidy)")
