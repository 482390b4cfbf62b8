"""How `make test` shares the suite between its pytest-xdist workers.

`make test` runs `pytest -n 2 --dist loadscope --no-loadscope-reorder`: each worker is a
pytest session of its own (its own `sandbox`, tests/fixtures/sandbox.py), and a work unit
(scope) is one test module, so that module-scoped fixtures are set up once. Two things
differ from xdist's own loadscope:

- the Kubeflow upgrade scenarios of tests/test_upgrade_kubeflow.py are a unit each (the
  module would be ~10 minutes on one worker; its `upgraded` fixture is computed once per
  scenario, so splitting it by scenario computes nothing twice);
- the slowest modules are handed out first (longest first), so that the live Kubeflow walk,
  the longest test by far, never starts near the end while the other worker idles.

Without -n (`make test-fast`, `pytest FILE`) nothing here changes the order of the tests.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

# The slowest modules, slowest first: their sums of test durations in a two-worker run
# (`make test PYTEST_ARGS=--junitxml=...`, 2026-12-07, load 6-8, so about twice the idle
# times). The others follow in collection order: the rest of the integration tier, then the
# unit tests, whose many short modules fill the end of the run evenly.
SLOWEST_FIRST = (
    "tests/integration/test_kubeflow_live.py",  # 796 s: one test (10-11 min idle with rollback)
    "tests/test_upgrade_kubeflow.py",  # 1,219 s in seven scenario units of 105-237 s
    "tests/integration/test_demo.py",  # 188 s
    "tests/integration/test_rollout.py",  # 141 s
    "tests/test_redact_kubeflow.py",  # 123 s
    "tests/integration/test_apply_signals.py",  # 114 s
    "tests/integration/test_apply_replace_kubeflow.py",  # 105 s
    "tests/test_remote_kubeflow.py",  # 102 s
    "tests/integration/test_apply.py",  # 70 s
    "tests/integration/test_apply_safety.py",  # 69 s
    "tests/test_plan_git.py",  # 69 s
    "tests/integration/test_apply_records.py",  # 67 s
    "tests/integration/test_apply_crd_versions_kubeflow.py",  # 42-69 s alone, load 7
    "tests/integration/test_sandbox.py",  # 65 s
)

# Modules whose parametrized tests are shared out by parameter rather than as a whole.
SPLIT_BY_PARAMETER = ("tests/test_upgrade_kubeflow.py",)

_PARAMETER = re.compile(r"\[(.*)\]$")


def scope_of(nodeid: str) -> str:
    """The work unit of a test: its module, or its module and parameter for the modules of
    SPLIT_BY_PARAMETER (a test without a parameter there stays with its module)."""
    module = nodeid.split("::", 1)[0]
    m = _PARAMETER.search(nodeid)
    if module in SPLIT_BY_PARAMETER and m:
        return f"{module}[{m.group(1)}]"
    return module


def _rank(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return SLOWEST_FIRST.index(module) if module in SLOWEST_FIRST else len(SLOWEST_FIRST)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only on an xdist worker: the collection order there is the order units are handed out
    # (--no-loadscope-reorder). A stable sort by module keeps each module's tests in order.
    if not hasattr(config, "workerinput"):
        return
    items.sort(key=_rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrScenarioScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ModuleOrScenarioScheduling(config, log)
