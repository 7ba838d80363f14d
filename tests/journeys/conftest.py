"""What the journeys share: the realistic org the unattended, exit-code and failure-path journeys run on
(tests/journeys/test_unattended.py, test_exit_codes.py, test_failure_paths.py), generated once per test process (each
pytest-xdist worker) and copied by each test that runs on it (`copy_of`), so no test sees another's writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from tests.journeys.test_unattended import AS_OF, write_config


@pytest.fixture(scope="session")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small realistic org, generated once and copied by each test that needs it: never write to it."""
    folder = tmp_path_factory.mktemp("demo-org")
    crm = LocalCrm.create(folder / "crm.duckdb")
    demo.generate(crm, contacts=400, seed=11, as_of=AS_OF)
    crm.close()
    write_config(folder)
    return folder
