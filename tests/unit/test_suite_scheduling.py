"""How `pytest -n auto` hands out the suite (tests/conftest.py): a module a unit, and every Spark test in one unit,
so one worker starts one JVM for them all (bench/README.md, "Session 32")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import pytest_xdist_make_scheduler

IDS = [
    "tests/spark/test_equality.py::test_a[2026-06-15]",
    "tests/spark/test_words.py::test_b",
    "tests/unit/test_ids.py::test_c",
    "tests/unit/test_ids.py::test_d[x]",
    "tests/journeys/test_ladder.py::test_e",
]


class _Config:
    def __init__(self, config: pytest.Config, dist: str) -> None:
        self._config, self._dist = config, dist

    def getoption(self, name: str, *args: Any) -> Any:
        return self._dist if name == "dist" else self._config.getoption(name, *args)

    def getvalue(self, name: str) -> Any:
        return ["2*popen"] if name == "tx" else self._config.getvalue(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


@pytest.mark.parametrize(
    ("dist", "units"),
    [
        (
            "loadscope",
            [
                "tests/spark/",
                "tests/spark/",
                "tests/unit/test_ids.py",
                "tests/unit/test_ids.py",
                "tests/journeys/test_ladder.py",
            ],
        ),
        ("load", ["tests/spark/", "tests/spark/", *IDS[2:]]),
    ],
)
def test_the_spark_tests_are_one_unit_and_the_rest_by_module_or_by_test(
    pytestconfig: pytest.Config, dist: str, units: list[str]
) -> None:
    scheduler = pytest_xdist_make_scheduler(_Config(pytestconfig, dist), None)  # type: ignore[arg-type]
    assert [scheduler._split_scope(i) for i in IDS] == units


@pytest.mark.parametrize("dist", ["each", "loadfile", "worksteal", "no"])
def test_another_dist_is_left_to_xdist(pytestconfig: pytest.Config, dist: str) -> None:
    assert pytest_xdist_make_scheduler(_Config(pytestconfig, dist), None) is None  # type: ignore[arg-type]
