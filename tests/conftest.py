"""Shared fixtures live in tests/fixtures/, one module per outside system."""

from collections.abc import Iterator

import pytest

import gitops.redact

pytest_plugins = [
    "tests.fixtures.kubeflow",
    "tests.fixtures.gitrepos",
    "tests.fixtures.sandbox",
    "tests.fixtures.kustomize",
    "tests.fixtures.remote_mirror",
]


@pytest.fixture(autouse=True)
def _fresh_run_redactor() -> Iterator[None]:
    """The CLI's redactor is process-wide (one run per process); in the test process a secret
    value learned by one test would otherwise be scrubbed from another test's messages."""
    gitops.redact._RUN = None
    yield
    gitops.redact._RUN = None
