"""Salesforce Ids: the 18-character case-safe suffix, in Python and in the SQL used for bulk generation."""

from __future__ import annotations

import duckdb
import pytest

from connector import ids


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        # Published examples of the case-safe conversion (Salesforce Help: "What is a Case Safe ID?").
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
        ("003000000000000", "003000000000000AAA"),
    ],
)
def test_to18_appends_the_case_safe_suffix(id15: str, id18: str) -> None:
    assert ids.to18(id15) == id18
    assert ids.is_valid(id18)


def test_a_wrong_suffix_is_invalid() -> None:
    assert not ids.is_valid("001A0000006Vm9rAAA")
    assert not ids.is_valid("short")


def test_sql_macros_make_the_same_ids_as_python() -> None:
    con = duckdb.connect()
    for stmt in ids.sql_macros():
        con.execute(stmt)
    for n in (0, 1, 35, 36, 1_234_567, 10**9):
        (got,) = con.execute("SELECT sf_id('00T', ?)", [n]).fetchone()  # type: ignore[misc]
        assert got == ids.make("00T", n)
        assert ids.is_valid(got)
