"""Free text and redaction marks: what looks like a secret, where a token starts and ends,
`name=value` pairs, and how many marks a report holds. gitops.redact applies these
(docs/secrets.md says exactly what free text loses and keeps, and why)."""

from __future__ import annotations

import re

MARK = re.compile(r"<redacted sha256:[0-9a-f]{8}>")
MARK_SPLIT = re.compile(r"(<redacted sha256:[0-9a-f]{8}>)")  # re.split keeps the marks
# A value is scrubbed from free text only as a whole token: not inside a longer word, a
# name (`mlstack-dev`, `non-root`) or a dotted host name; `=`, `:`, `@`, `/`, quotes and
# spaces end a token, so `password=VALUE`, `user:VALUE@host` and `"VALUE"` are caught.
BEFORE_TOKEN = r"(?<![A-Za-z0-9_.\-])"
AFTER_TOKEN = r"(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_])"


def secret_like(value: str) -> bool:
    """Whether a value looks like a secret rather than a word: at least 8 characters of
    three kinds (lower case, upper case, digits, others), 12 of two kinds, or 20 of any.
    `hunter2-correct-horse`, `tok-9f8e7d6c5b`, a base64 or hex key are; `root`, `test`,
    `/dex`, `minio123`, `password` are not."""
    n = len(value)
    if n < 8:
        return False
    kinds = (any(c.islower() for c in value) + any(c.isupper() for c in value)
             + any(c.isdigit() for c in value) + any(not c.isalnum() for c in value))
    return (kinds >= 3) or (n >= 12 and kinds >= 2) or n >= 20


def count_marks(text: str) -> tuple[int, int]:
    """(redaction marks in a text, distinct values among them): what a report says it hid."""
    marks = MARK.findall(text)
    return len(marks), len(set(marks))


def redaction_note(text: str) -> str:
    """'12 secret values redacted (5 distinct), each shown as <redacted sha256:…>' for a
    report's footer; '' when it hides nothing."""
    n, distinct = count_marks(text)
    if not n:
        return ""
    return (f"{n} secret value{'s' if n != 1 else ''} redacted ({distinct} distinct), each "
            "shown as <redacted sha256:…>, a salted hash (docs/secrets.md)")



# `password=hunter2`, `--db-password hunter2` is not caught (no separator), `token: abc`,
# `"apiKey":"abc"`: the value runs to whitespace, a quote, a comma or a closing bracket.
# The separator stays on its line: `staticPasswords:` followed by a list on the next line
# is a key, not a pair (it turned `- email:` into a mark in Kubeflow's dex config).
PAIR = re.compile(
    r"""(?P<key>[A-Za-z_][\w.-]*["']?)(?P<sep>[ \t]*[=:][ \t]*["']?)(?P<value>[^\s"',;}\])<]+)"""
)
PAIR_EQ = re.compile(r"""(?P<key>[A-Za-z_][\w.-]*)(?P<sep>=["']?)(?P<value>[^\s"',;}\])<]+)""")


NAME_PARTS = re.compile(r"[-.:/_]")
NEVER = re.compile(r"(?!x)x")
