"""Rendering a statement leaves its tree as it was: `sql.render` does not copy a tree before the generator reads
it, and the batches of a large sync render the same trees again and again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from connector import sql
from connector.engine import classify, evaluate, features, plan, timeline
from connector.ruleset.compiler import load
from tests.conftest import BOTH_RULE_FILES, ROOT


@BOTH_RULE_FILES
def test_rendering_every_engine_statement_leaves_its_tree_unchanged(rules_file: Path) -> None:
    rules = load(rules_file)
    pooled, body, tail = timeline.cached_parts(rules, answered=features.answered_tables(rules))
    trees: list[exp.Expr] = [
        classify.statement(rules),
        classify.statement(rules, kindless=True, lean=True),
        *features.statements(rules),
        *features.statements(rules, one_contact=True),
        *timeline.statements(rules),
        *pooled,
        *body,
        *tail,
        evaluate.statement(rules),
        plan.statement(),
    ]
    for tree in trees:
        before = tree.copy()
        first = sql.render(tree)
        assert tree == before, first[:300]
        assert sql.render(tree) == first


def test_a_slot_tree_with_no_place_yet_is_taken_once_and_no_node_gets_two_parents() -> None:
    """A tree built for one statement is nested as it is; once it has a place, every other use is a copy."""
    cond = sql.q("a > 1")
    first = sql.q("SELECT $c AS x, $c AS y FROM t", c=cond)
    second = sql.q("SELECT * FROM t WHERE $c", c=cond)
    in_first = [n for n in first.walk() if isinstance(n, exp.GT)]
    in_second = [n for n in second.walk() if isinstance(n, exp.GT)]
    assert [n is cond for n in in_first] == [True, False]
    assert [n is cond for n in in_second] == [False]
    for tree in (first, second):
        assert all(child.parent is node for node in tree.walk() for child in node.iter_expressions())
    assert sql.render(first) == "SELECT a > 1 AS x, a > 1 AS y FROM t"
    assert sql.render(second) == "SELECT * FROM t WHERE a > 1"


def test_a_rule_set_builds_each_statement_once_and_runs_the_same_text(tmp_path: Path) -> None:
    """The DuckDB passes keep what they rendered for a rule set by its arguments: a second sync in the process
    runs the very text the first built, another argument builds again, and an edited rule file is a new rule set
    with nothing kept."""
    path = tmp_path / "ladder.yaml"
    text = (ROOT / "rules" / "ladder.yaml").read_text()
    path.write_text(text)
    rules = load(path)
    built: list[int] = []

    def build(n: int) -> list[sql.Rendered]:
        built.append(n)
        return sql.rendered_each(timeline.statements(rules))

    first = rules.memo.keep(("t", 1), lambda: build(1))
    again = rules.memo.keep(("t", 1), lambda: build(2))
    other = rules.memo.keep(("t", 2), lambda: build(3))
    assert built == [1, 3]
    assert again is first
    assert [r.text for r in other] == [r.text for r in first] == [sql.render(t) for t in timeline.statements(rules)]
    assert timeline.rendered(rules) is timeline.rendered(rules)
    assert "within_days: 90" in text
    path.write_text(text.replace("within_days: 90", "within_days: 75"))
    edited = load(path)
    assert edited.memo is not rules.memo
    assert [r.text for r in timeline.rendered(edited)] != [r.text for r in timeline.rendered(rules)]


def test_a_rendered_statement_still_refuses_an_unbound_parameter() -> None:
    con = duckdb.connect()
    stmt = sql.rendered(sql.q("SELECT CAST($as_of AS DATE) + 1"))
    assert stmt.params == {"as_of"}
    with pytest.raises(ValueError, match="unbound SQL parameters: as_of"):
        sql.run(con, stmt)
    assert sql.scalar(con, stmt, {"as_of": "2026-01-01", "other": 1}) == dt.date(2026, 1, 2)
