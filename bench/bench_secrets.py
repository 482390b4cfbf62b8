"""Secrets: what redaction does to a real plan, and what SOPS decryption and the
`secrets.require: sops` check cost (docs/secrets.md).

    .venv/bin/python bench/bench_secrets.py [--runs 5]

1. The Kubeflow v1.8.0 -> v1.9.0 `example` plan as text: its redaction marks, how many
   distinct values they hide, and how many are glued to a word or a name.
2. Decrypting one SOPS-encrypted Secret manifest (8 values, age): stackctl natively against
   `sops decrypt` (the program of `make sops`), medians, interleaved.
3. The cached render of Kubeflow v1.9.0's `example` without and with
   `secrets: {require: sops}`, medians, interleaved.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import command_line, interleaved, kubeflow_release, median, table
from gitops.plan import plan_from_renders, render_text
from gitops.plan.model import RefInfo
from gitops.redact import Redactor
from gitops.render import render_path
from gitops.scrub import count_marks
from gitops.sops.age import Identity
from gitops.sops.decrypt import decrypt_file
from gitops.sops.policy import SecretsPolicy
from gitops.sops.program import find_sops

MARK = r"<redacted sha256:[0-9a-f]{8}>"
SECRET = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: ml}
stringData:
  password: hunter2-correct-horse
  user: app
  port: 5432
  url: postgres://app:pw@db:5432/app
data:
  token: dG9rLTlmOGU3ZDZjNWI0YQ==
  a: YQ==
  b: Yg==
  c: Yw==
"""


def marks(tmp: Path) -> str:
    trees = {v: kubeflow_release(v, tmp) / "example" for v in ("v1.8.0", "v1.9.0")}
    objs = {v: [dict(o.body) for o in render_path(p).objects] for v, p in trees.items()}
    plan = plan_from_renders({"example": objs["v1.8.0"]}, {"example": objs["v1.9.0"]},
                             base=RefInfo("v1.8.0", "a" * 40),
                             head=RefInfo("v1.9.0", "b" * 40), redactor=Redactor())
    text = render_text(plan)
    n, distinct = count_marks(text)
    glued = len(re.findall(rf"[A-Za-z0-9_./-]{MARK}|{MARK}[A-Za-z0-9_-]", text))
    return table(["plan", "bytes", "marks", "distinct values", "glued to a word or name"],
                 [["Kubeflow v1.8.0 -> v1.9.0 example", f"{len(text):,}", str(n), str(distinct),
                   str(glued)]])


def decryption(tmp: Path, runs: int) -> str:
    program = find_sops()
    if program is None:
        return "(no sops program: run 'make sops' to compare with it)"
    ident = Identity.generate()
    keys = tmp / "keys.txt"
    keys.write_text(ident.encoded() + "\n")
    src = tmp / "db.sops.yaml"
    src.write_text(SECRET)
    enc = subprocess.run([str(program.path), "encrypt", "--age", ident.recipient, str(src)],
                         capture_output=True, check=True).stdout
    src.write_bytes(enc)
    os.environ["SOPS_AGE_KEY_FILE"] = str(keys)
    times = interleaved({
        "stackctl (native age, AES-GCM, MAC)": lambda: decrypt_file(enc, name=src.name),
        "sops decrypt": lambda: subprocess.run([str(program.path), "decrypt", str(src)],
                                               capture_output=True, check=True),
    }, runs)
    return table(["decrypting one Secret manifest (8 values)", "median ms"],
                 [[k, f"{median(v) * 1000:.1f}"] for k, v in times.items()])


def policy(tmp: Path, runs: int) -> str:
    example = kubeflow_release("v1.9.0", tmp / "policy") / "example"
    render_path(example)  # fill the cache
    times = interleaved({
        "no policy": lambda: render_path(example),
        "secrets.require: sops": lambda: render_path(example, policy=SecretsPolicy(True)),
    }, runs)
    found = render_path(example, policy=SecretsPolicy(True)).clear_text
    return table(["cached render of Kubeflow v1.9.0 example", "median s", "clear-text secrets"],
                 [[k, f"{median(v):.2f}", str(len(found)) if "sops" in k else "-"]
                  for k, v in times.items()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"# secrets benchmark\n\ncommand: {command_line()}; {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}\n")
    with tempfile.TemporaryDirectory(prefix="stackctl-bench-secrets-") as d:
        tmp = Path(d)
        for part in (marks(tmp), decryption(tmp, args.runs), policy(tmp, args.runs)):
            print(part + "\n", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
