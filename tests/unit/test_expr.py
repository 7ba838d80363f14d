"""The condition language: what it accepts, what it refuses, and that its SQL means what the admin wrote."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from connector import sql
from connector.ruleset.expr import ExprError, Symbol, Type, compile_expr

SYMBOLS = {
    "replies_90d": Symbol(Type.INT, sql.col("replies_90d")),
    "ratio": Symbol(Type.FLOAT, sql.col("ratio")),
    "last_meeting": Symbol(Type.DATE, sql.col("last_meeting")),
    "Subject": Symbol(Type.STRING, sql.col("Subject")),
    "flagged": Symbol(Type.BOOL, sql.col("flagged")),
    "as_of": Symbol(Type.DATE, sql.as_of()),
}
AS_OF = dt.date(2026, 6, 15)


def evaluate(text: str, **row: object) -> object:
    """Run the compiled SQL on one row, as the engine would."""
    values = {"replies_90d": 0, "ratio": None, "last_meeting": None, "Subject": None, "flagged": False, **row}
    con = duckdb.connect()
    compiled = compile_expr(text, SYMBOLS)
    con.execute(
        "CREATE TABLE t AS SELECT " + ", ".join(f"$v{i} AS {k}" for i, k in enumerate(values)),
        {f"v{i}": v for i, v in enumerate(values.values())},
    )
    row_out = sql.run(con, sql.select(compiled.expr, from_="t"), {"as_of": AS_OF}).fetchone()
    assert row_out is not None
    return row_out[0]


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        ("replies_90d >= 3", {"replies_90d": 3}, True),
        ("replies_90d >= 3", {"replies_90d": 2}, False),
        ("Subject LIKE '%feedback%'", {"Subject": "Customer FEEDBACK session"}, True),  # SOQL LIKE ignores case
        ("Subject NOT LIKE 'Re:%'", {"Subject": "RE: hello"}, False),
        ("Subject IN ('Call', 'Meeting')", {"Subject": "Meeting"}, True),
        ("as_of - last_meeting <= 90", {"last_meeting": dt.date(2026, 3, 17)}, True),
        ("as_of - last_meeting <= 90", {"last_meeting": dt.date(2026, 3, 16)}, False),
        ("last_meeting >= as_of - 30", {"last_meeting": dt.date(2026, 5, 16)}, True),
        ("last_meeting >= DATE '2026-01-01'", {"last_meeting": dt.date(2025, 12, 31)}, False),
        ("replies_90d / 2 = 1.5", {"replies_90d": 3}, True),  # decimal division, not integer
        ("replies_90d / 0 IS NULL", {"replies_90d": 3}, True),  # no division-by-zero crash
        ("NOT flagged AND (replies_90d BETWEEN 1 AND 5 OR ratio > 2)", {"replies_90d": 4}, True),
        ("COALESCE(ratio, 0) < 1 AND ABS(-2) = 2 AND GREATEST(replies_90d, 7) = 7", {}, True),
        ("last_meeting IS NULL", {}, True),
    ],
)
def test_conditions_mean_what_they_say(text: str, row: dict[str, object], expected: object) -> None:
    assert evaluate(text, **row) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("replys_90d > 1", "unknown name 'replys_90d' (did you mean 'replies_90d'?)"),
        ("subject LIKE 'x'", "unknown name 'subject' (did you mean 'Subject'?)"),
        ("replies_90d > 'x'", "cannot compare a number with a text"),
        ("Subject + 1 > 2", "cannot compute a text + a number"),
        ("replies_90d", "gives a number, but a true/false is needed"),
        ("NOT replies_90d", "is a number, but NOT needs a true/false"),
        ("system('ls') = 1", "unknown function system()"),
        ("UPPER(Subject) = 'X'", "not allowed here"),
        ("(SELECT 1) = 1", "is not allowed in a condition"),
        ("CAST(replies_90d AS VARCHAR) = '1'", "casts are not allowed"),
        ("t.replies_90d > 1", "names are not qualified"),
        ("replies_90d > 1; DELETE FROM Contact", "one expression"),
        ("replies_90d >=", "cannot parse the condition near '>='"),
        ("Subject = 'open", "unclosed quote"),
        ("Subject = NULL", "compare with NULL using IS NULL"),
        ("last_meeting > DATE '2026-02-30'", "is not a date"),
        ("", "empty"),
    ],
)
def test_bad_conditions_are_refused_with_a_message_an_admin_can_act_on(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text, SYMBOLS)
    assert message in info.value.message


def test_the_error_offset_points_at_the_unknown_name() -> None:
    with pytest.raises(ExprError) as info:
        compile_expr("replies_90d > 1 AND\n  replys > 2", SYMBOLS)
    assert info.value.offset == len("replies_90d > 1 AND\n  ")


@pytest.mark.parametrize(
    ("text", "name", "offset"),
    [
        ("regexp_matches(Subject, 'renewal')", "regexp_matches", 0),  # sqlglot's own name for it is REGEXP_LIKE
        ("replies_90d > 1 AND\n  COALESCE(0, upper(Subject)) = 1", "upper", len("replies_90d > 1 AND\n  COALESCE(0, ")),
        ("Len('abc') > 2", "Len", 0),
    ],
)
def test_a_function_that_is_not_allowed_is_named_and_placed_as_written(text: str, name: str, offset: int) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text, SYMBOLS)
    assert info.value.message.startswith(f"the function {name}() is not allowed here")
    assert info.value.offset == offset


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("replies_90d > 1 OR CASE WHEN ratio > 1 THEN 1 ELSE 0 END = 1", "CASE is not allowed", 19),
        ("replies_90d // 2 = 1", "'//' (whole-number division) is not allowed: use '/'", 12),
        ("replies_90d ^ 2 = 4", "'^' (a power) is not allowed", 12),
        ("replies_90d ** 2 = 4", "'**' (a power) is not allowed", 12),
        ("power(replies_90d, 2) = 4", "the function power() is not allowed", 0),
    ],
)
def test_an_operator_sqlglot_reads_as_something_else_is_refused_as_written(
    text: str, message: str, offset: int
) -> None:
    """sqlglot reads CASE as a function, `//` as a cast of a division and `^` as POWER(): the finding says what the
    admin wrote, where, and what to write instead."""
    with pytest.raises(ExprError) as info:
        compile_expr(text, SYMBOLS)
    assert info.value.message.startswith(message)
    assert info.value.offset == offset


def test_names_used_are_listed_in_order_for_explain() -> None:
    compiled = compile_expr("last_meeting > as_of - 30 OR replies_90d > 1 OR replies_90d < 0", SYMBOLS)
    assert compiled.names == ["last_meeting", "as_of", "replies_90d"]
