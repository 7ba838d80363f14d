"""Work one pass has done is not done again by the next: the timeline reads the tables of
connector.engine.answers (which answer answered which trigger) that engine.features made for the same contacts,
on every path that runs both (a DuckDB computation of every contact, `explain`, a Spark sync, calibration on
Spark)."""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp

from connector.engine import features, timeline
from connector.ruleset.compiler import load
from tests.conftest import BOTH_RULE_FILES


def _made(trees: list[exp.Expr]) -> list[str]:
    return [t.this.name for t in trees if isinstance(t, exp.Create)]


def _read(trees: list[exp.Expr]) -> set[str]:
    return {table.name for t in trees for table in t.find_all(exp.Table)}


@BOTH_RULE_FILES
def test_the_timeline_reads_the_answers_the_features_pass_made(rules_file: Path) -> None:
    rules = load(rules_file)
    answered = features.answered_tables(rules)
    assert answered, "the rule file has an unanswered feature whose answers answer the oldest trigger first"
    made_by_features = _made(features.statements(rules))
    assert set(answered.values()) <= set(made_by_features)

    alone = timeline.statements(rules)
    after_features = timeline.statements(rules, answered=answered)

    # Alone, the timeline matches answers to triggers itself; after the features pass, it reads their tables.
    assert len(_made(alone)) - len(_made(after_features)) == 3 * len(answered)  # triggers, answers, matched
    assert not set(_made(after_features)) & set(made_by_features)
    assert set(answered.values()) <= _read(after_features)
    assert not set(answered.values()) & _read(alone)
