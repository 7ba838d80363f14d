"""Rendering a statement leaves its tree as it was: `sql.render` does not copy a tree before the generator reads
it, and the batches of a large sync render the same trees again and again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlglot import exp

from connector import sql
from connector.engine import classify, evaluate, features, plan, timeline
from connector.ruleset.compiler import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "rules_file",
    [ROOT / "rules" / "ladder.yaml", ROOT / "tests" / "spark" / "every_feature.yaml"],
    ids=["default", "every_feature"],
)
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


def test_a_given_tree_is_nested_as_is_once_and_copied_anywhere_else() -> None:
    inner = sql.q("SELECT 1 AS one")
    outer = sql.q("SELECT * FROM ($a) x JOIN ($a) y ON true", a=sql.Given(inner))
    placed = [n for n in outer.walk() if isinstance(n, exp.Select) and n.find(exp.Alias) and n is not outer]
    assert len(placed) == 2
    assert [n is inner for n in placed].count(True) == 1  # the first place took it, the other a copy
    assert all(n == inner for n in placed)
    copied = sql.q("SELECT * FROM ($a) x", a=inner)
    assert not any(n is inner for n in copied.walk())  # a plain slot is always copied
