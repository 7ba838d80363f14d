"""What the journeys share: the realistic org the unattended, exit-code and failure-path journeys run on
(tests/journeys/test_unattended.py, test_exit_codes.py, test_failure_paths.py), generated once per test process (each
pytest-xdist worker) and copied by each test that runs on it (`copy_of`), so no test sees another's writes; the same
org after one clean sync, and what a clean sync of it leaves on a later day, likewise made once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from tests.journeys.test_unattended import AS_OF, cli, copy_folder, copy_of, outcome, write_config


@pytest.fixture(scope="session")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small realistic org, generated once and copied by each test that needs it: never write to it."""
    folder = tmp_path_factory.mktemp("demo-org")
    crm = LocalCrm.create(folder / "crm.duckdb")
    demo.generate(crm, contacts=400, seed=11, as_of=AS_OF)
    crm.close()
    write_config(folder)
    return folder


@pytest.fixture(scope="session")
def synced_org(demo_org: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`demo_org` after one clean `sync` on AS_OF through the command line (its CRM and its state store, whose run
    history holds that run): copy it with `test_unattended.copy_folder`, never write to it."""
    folder = copy_of(demo_org, tmp_path_factory.mktemp("synced-org"), "org")
    proc = cli(folder, "sync", "--as-of", AS_OF.isoformat())
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="session")
def clean_outcome(demo_org: Path, synced_org: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """What a clean run leaves on every contact: a sync on `day` of `demo_org` (day AS_OF) or of `synced_org`
    (a later day). Each day is synced once per test process, whichever test asks first."""
    made: dict[str, Any] = {}

    def of(day: str) -> Any:
        if day not in made:
            first = day == AS_OF.isoformat()
            folder = copy_folder(demo_org if first else synced_org, tmp_path_factory.mktemp("clean"), "org")
            proc = cli(folder, "sync", "--as-of", day)
            assert proc.returncode == 0, proc.stderr
            made[day] = outcome(folder)
        return made[day]

    return of
