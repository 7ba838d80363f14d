"""Classifying activities: an org logs the same subjects again and again, so each word test is run once per
distinct text and shared by the kinds that use it, and every activity is still of exactly the kinds its own
condition says, empty subjects and notes included."""

from __future__ import annotations

import datetime as dt

import duckdb
import sqlglot

from connector import sql
from connector.engine import classify
from connector.engine.relations import kind_col
from connector.ruleset.compiler import load_text
from connector.ruleset.expr_guard import unguarded
from tests.unit.test_words import LADDER_TAIL

RULES = (
    """name: t
words:
  listening_cues: [hear, ask about, understand]
  selling_cues: [pitch, price*, upsell]
kinds:
  listening:
    match: >-
      TaskSubtype = 'Call'
      AND MENTIONS(listening_cues, Subject, Description)
      AND NOT MENTIONS(selling_cues, Subject, Description)
  reply:
    match: Subject LIKE 'Re:%' AND NOT MENTIONS(selling_cues, Subject, Description)
  unread:
    match: NOT MENTIONS(listening_cues, Subject) AND NOT Subject LIKE 'Re:%'
"""
    + LADDER_TAIL
)

DAY = dt.date(2026, 3, 10)
ROWS = [  # Subject, Description, TaskSubtype: the same few subjects many times, as reps log them
    ("Call to hear about their plans", None, "Call"),
    ("Call to hear about their plans", None, "Call"),
    ("Call to hear about their plans", "and to pitch the new tier", "Call"),
    ("Call", "Asked about what worries them", "Call"),
    ("Call", None, "Call"),
    ("CALL TO UNDERSTAND THEIR GOALS", None, "Call"),
    ("Re: renewal", None, "Email"),
    ("Re: pricing", None, "Email"),
    ("re: HEARD you", "", "Email"),
    (None, None, "Call"),
    (None, "hear them out", "Call"),
    ("", None, None),
    ("Rehearsal", None, "Call"),
] * 3


def _crm() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE crm_activity ("WhoId" VARCHAR, "Id" VARCHAR, day DATE, "Subject" VARCHAR, object VARCHAR, '
        '"Description" VARCHAR, "TaskSubtype" VARCHAR)'
    )
    con.executemany(
        "INSERT INTO crm_activity VALUES (?, ?, ?, ?, 'Task', ?, ?)",
        [("003A", f"00T{i:03}", DAY, s, d, t) for i, (s, d, t) in enumerate(ROWS)],
    )
    return con


def test_each_activity_is_of_the_kinds_its_own_condition_says_with_the_word_tests_run_once_per_text() -> None:
    rules = load_text(RULES, "ladder.yaml")
    con = _crm()
    classify.classify(con, rules, DAY)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            f"SELECT aid, {', '.join(kind_col(k) for k in rules.kinds)} FROM tl_act ORDER BY aid"
        ).fetchall()
    }
    # What each condition says of each row on its own, with no lookup: the meaning the shared tests must keep.
    plain = ", ".join(sql.render(k) for k in classify.kinds_tree(rules))
    want = {
        r[0]: r[1:]
        for r in con.execute(f'SELECT "Id", {plain} FROM crm_activity ORDER BY "Id"').fetchall()
        if any(r[1:])
    }
    assert got == want
    by_row = dict(zip((f"00T{i:03}" for i in range(len(ROWS))), ROWS, strict=True))
    listening = sorted({by_row[a][0] or "" for a, (k, _, _) in got.items() if k})
    assert listening == ["", "CALL TO UNDERSTAND THEIR GOALS", "Call", "Call to hear about their plans"]
    assert "00T002" not in got  # the call that also pitched is not listening (and mentions listening)
    assert "00T009" not in got  # no subject and no notes: not a reply (unknown) and so not 'unread' either
    assert got["00T011"] == (False, False, True)  # an empty subject mentions nothing, and is not a reply


def test_a_word_test_shared_by_kinds_is_written_once() -> None:
    text = sql.render(classify.statement(load_text(RULES, "ladder.yaml")))
    # listening_cues over Subject and Description, listening_cues over Subject alone, selling_cues over both: three
    # regular expressions though the kinds name four; and LIKE 'Re:%' once for two kinds.
    assert text.count("REGEXP_MATCHES") == 3
    assert text.count("ILIKE 'Re:%'") == 1


def test_the_guards_before_word_tests_go_once_the_words_are_read_from_the_lookups() -> None:
    rules = load_text(RULES, "ladder.yaml")
    plain = " ".join(sql.render(k) for k in classify.kinds_tree(rules))
    looked_up = sql.render(classify.statement(rules))
    # Without the lookups, a CASE in each kind keeps its regular expression off the rows its cheap tests already
    # rule out; with them, the CASE would only run those tests twice a row (the first test: the same meaning).
    assert plain.count("CASE WHEN NOT COALESCE") == 3
    assert "CASE" not in looked_up


def test_only_a_guard_whose_else_begins_with_its_own_test_is_taken_off() -> None:
    def off(text: str) -> str:
        return unguarded(sqlglot.parse_one(text, read="duckdb")).sql("duckdb")

    # The shape the compiler makes: the CASE has its ELSE's value, whatever the test gives (NULL included).
    assert off("CASE WHEN NOT COALESCE(a = 1, TRUE) THEN FALSE ELSE (a = 1 AND w) END") == "(a = 1 AND w)"
    # Written by hand, the ELSE not beginning with the test: a different value where a = 1 is false; kept.
    kept = "CASE WHEN NOT COALESCE(a = 1, TRUE) THEN FALSE ELSE (b = 2 AND w) END"
    assert off(kept) == kept
    # A guard still in front of a regular expression stays: it is what keeps the expression off most rows.
    costly = "CASE WHEN NOT COALESCE(a = 1, TRUE) THEN FALSE ELSE (a = 1 AND REGEXP_MATCHES(s, 'x')) END"
    assert off(costly) == costly
