"""Salesforce Ids: the 18-character case-safe suffix, in Python and in the SQL used for bulk generation."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize("typed", ["001a0000006vm9riac", "001A0000006VM9RIAC", "001a0000006Vm9rIAC"])
def test_an_18_character_id_typed_in_another_case_gets_its_case_back_from_its_suffix(typed: str) -> None:
    assert ids.case_restored(typed) == "001A0000006Vm9rIAC"


@pytest.mark.parametrize(
    "typed",
    [
        "001a0000006vm9r",  # 15 characters carry no suffix: their case cannot be told
        "001a0000006vm9r9ac",  # no suffix Salesforce gives: its alphabet is A to Z and 0 to 5
        "0010000000000005A",  # 17 characters
        "001000000000000BAA",  # the suffix says the first character is an upper-case letter, and it is a digit
        "001a0000006vm9r-ac",
    ],
)
def test_what_the_suffix_cannot_restore_is_returned_as_typed(typed: str) -> None:
    assert ids.case_restored(typed) == typed


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),  # 15 characters: the suffix added
        ("001a0000006vm9riac", "001A0000006Vm9rIAC"),  # 18 in another case: the case restored
        (" 001A0000006Vm9rIAC ", "001A0000006Vm9rIAC"),  # pasted with spaces
    ],
)
def test_an_id_as_typed_becomes_the_18_character_id_the_crm_keys_records_by(typed: str, expected: str) -> None:
    assert ids.typed(typed) == expected


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("003NOPE", "is not a Salesforce Id (15 or 18 characters)"),
        ("001A0000006Vm9r-AC", "is not a Salesforce Id (15 or 18 characters)"),
        ("001A0000006Vm9rZZZ", "its last three characters do not match the first 15"),
    ],
)
def test_what_is_no_salesforce_id_is_refused_with_what_is_wrong(typed: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        ids.typed(typed)
