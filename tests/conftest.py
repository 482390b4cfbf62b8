"""Shared fixtures live in tests/fixtures/, one module per outside system; how `make test`
shares the suite between its workers is in tests/scheduling.py."""

pytest_plugins = [
    "tests.fixtures.kubeflow",
    "tests.fixtures.gitrepos",
    "tests.fixtures.sandbox",
    "tests.fixtures.kustomize",
    "tests.fixtures.remote_mirror",
    "tests.fixtures.sops",
    "tests.scheduling",
]
