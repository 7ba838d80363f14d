"""The statements that build `crm_activity` and set malformed rows aside, rendered for Spark: DuckDB's as-of join,
full-match regexps and sorted samples become what Spark has, on the tree, meaning the same. No JVM needed: a
rewrite that only reshapes standard SQL is run on DuckDB beside the original."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from connector import sql
from connector.config import ActivitiesSection, FieldsSection
from connector.crm.local import activities as act
from connector.crm.local import quarantine
from connector.engine import dialect
from connector.errors import DialectError

_EMAILS = """
CREATE TABLE mail (aid VARCHAR, cid VARCHAR, incoming BOOLEAN, "at" TIMESTAMP, replies_ours BOOLEAN);
INSERT INTO mail VALUES
  ('o1', 'c1', false, '2026-01-01 09:00', NULL), ('i1', 'c1', true, '2026-01-05 09:00', false),
  ('o2', 'c1', false, '2026-01-05 09:00', NULL), ('i2', 'c1', true, '2026-01-05 09:00', false),
  ('o3', 'c1', false, '2026-03-01 09:00', NULL), ('o4', 'c1', false, '2026-03-01 09:00', NULL),
  ('i3', 'c1', true, '2026-03-20 09:00', false), ('i4', 'c1', true, '2026-06-01 09:00', NULL),
  ('o5', 'c2', false, NULL, NULL), ('i5', 'c2', true, '2026-01-02 09:00', true),
  ('i6', 'c3', true, '2026-01-02 09:00', false), ('i7', 'c3', true, NULL, false)
"""
_ASOF = """
SELECT i.aid, o."at" AS answered
FROM (SELECT * FROM mail WHERE incoming) i
ASOF LEFT JOIN (SELECT cid, "at" FROM mail WHERE incoming = false AND "at" IS NOT NULL) o
  ON i.cid = o.cid AND $condition
"""


@pytest.mark.parametrize("condition", ['i."at" > o."at"', 'i."at" >= o."at"', 'o."at" < i."at"', 'o."at" <= i."at"'])
def test_an_as_of_join_becomes_a_join_with_the_same_match(condition: str) -> None:
    con = duckdb.connect()
    con.execute(_EMAILS)
    tree = sql.q(_ASOF, condition=sqlglot.parse_one(condition, read="duckdb"))
    rewritten = dialect.to_spark(tree)
    assert "ASOF" not in sql.render(rewritten)
    assert "LEAD(" in dialect.render(tree)
    original = sorted(con.execute(sql.render(tree)).fetchall())
    assert sorted(con.execute(sql.render(rewritten)).fetchall()) == original
    assert len(original) == 7  # one row per incoming email, matched or not


def test_the_activity_answer_window_is_an_as_of_join_spark_reads() -> None:
    steps = dict(act.fact_steps())
    text = dialect.render(steps[act.ANSWERS_TABLE])
    assert "ASOF" not in text
    window = "LEAD(o.`at`) OVER (PARTITION BY o.cid ORDER BY o.`at` NULLS LAST)"
    assert f"LEFT JOIN (SELECT `o`.*, {window} AS `{dialect.ASOF_BOUND}`" in text
    assert sqlglot.parse_one(text, read="spark") is not None


def test_every_activity_and_quarantine_statement_reads_as_spark_sql() -> None:
    policy = ActivitiesSection()
    trees = [tree for _, tree in act.fact_steps()]
    trees += [act.unknown_statement(), quarantine.skipped(policy), quarantine.skipped_counts()]
    trees += [quarantine.contacts(FieldsSection())]
    trees += [act.rows(obj, policy) for obj in ("Task", "Event")]
    for tree in trees:
        text = dialect.render(tree)
        assert sqlglot.parse_one(text, read="spark") is not None
        for duckdb_only in ("ASOF", "REGEXP_FULL_MATCH", "ARG_MIN", "[1:10]", "::"):
            assert duckdb_only not in text, (duckdb_only, text[:200])


def test_a_full_match_is_an_anchored_rlike() -> None:
    tree = sql.q("SELECT regexp_full_match(x, '[a-z]{3}') FROM t")
    assert dialect.render(tree) == "SELECT x RLIKE '^(?:[a-z]{3})\\\\z' FROM t"


def test_a_sorted_sample_is_a_slice_of_a_sorted_list() -> None:
    tree = sql.q("SELECT list(x ORDER BY x)[1:10], list(x)[3:4] FROM t")
    assert (
        dialect.render(tree) == "SELECT SLICE(ARRAY_SORT(COLLECT_LIST(x)), 1, 10), SLICE(COLLECT_LIST(x), 3, 2) FROM t"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT list(x ORDER BY y)[1:10] FROM t",
        "SELECT list(x ORDER BY x DESC)[1:10] FROM t",
        "SELECT list(x)[n:10] FROM t",
        "SELECT * FROM i ASOF LEFT JOIN o ON i.k = o.k AND i.t > o.t",
        "SELECT i.a FROM i ASOF LEFT JOIN o ON i.k = o.k AND i.t > o.t AND i.u > o.u",
        "SELECT regexp_full_match(x, y) FROM t",
    ],
)
def test_what_has_no_faithful_spark_rendering_is_refused(statement: str) -> None:
    with pytest.raises(DialectError):
        dialect.render(sql.q(statement))


def test_the_rendered_statements_keep_their_tree_untouched() -> None:
    tree = dict(act.fact_steps())[act.ANSWERS_TABLE]
    before = sql.render(tree)
    dialect.render(tree)
    assert sql.render(tree) == before
    assert isinstance(tree.find(exp.Join), exp.Join)
