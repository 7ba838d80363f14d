"""Every engine statement renders as Spark SQL that Spark's grammar reads, and the constructs sqlglot would get
wrong on its own are rewritten on the tree. No JVM needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from connector.engine import classify, dialect, evaluate, features, plan, sql
from connector.errors import DialectError
from connector.ruleset.compiler import RuleSet, load

RULES = Path(__file__).resolve().parents[2] / "rules" / "ladder.yaml"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load(RULES)


def _statements(rules: RuleSet) -> list[exp.Expr]:
    return [classify.statement(rules), *features.statements(rules), evaluate.statement(rules), plan.statement()]


def test_every_engine_statement_reads_back_as_spark_sql(rules: RuleSet) -> None:
    for tree in _statements(rules):
        st = dialect.statement(tree)
        assert st.target is not None
        assert sqlglot.parse_one(st.text, read="spark") is not None
        assert st.params <= {"as_of"}


def test_the_evaluation_date_is_a_spark_named_parameter(rules: RuleSet) -> None:
    st = dialect.statement(classify.statement(rules))
    assert ":as_of" in st.text
    assert st.params == frozenset({"as_of"})


def test_a_date_difference_counts_days() -> None:
    tree = sql.q("SELECT $as_of - w_since < 5, $as_of - 3 AS d, CAST($as_of - day AS BIGINT) // 7 FROM t")
    text = dialect.render(tree)
    assert text == (
        "SELECT DATEDIFF(:as_of, w_since) < 5, :as_of - 3 AS d, CAST(DATEDIFF(:as_of, day) AS BIGINT) DIV 7 FROM t"
    )


def test_a_rule_date_feature_counts_days_when_declared() -> None:
    tree = sql.q("SELECT f_last_reply - f_first_reply FROM t")
    expected = "SELECT DATEDIFF(f_last_reply, f_first_reply) FROM t"
    assert dialect.render(tree, ["f_last_reply", "f_first_reply"]) == expected
    assert dialect.render(tree) == "SELECT f_last_reply - f_first_reply FROM t"


def test_a_case_insensitive_replace_keeps_its_flag() -> None:
    tree = sql.q("SELECT regexp_replace(s, '^re:', '', 'i') FROM t")
    assert dialect.render(tree) == "SELECT REGEXP_REPLACE(s, '(?i)^re:', '') FROM t"


def test_nested_constructs_are_all_translated() -> None:
    tree = sql.q(
        "SELECT count(DISTINCT ($as_of - day) // 7) FILTER (WHERE k_a), "
        "regexp_replace(regexp_replace(s, '^re:', '', 'i'), '^x', '', 'i') FROM t"
    )
    assert dialect.render(tree) == (
        "SELECT COUNT(DISTINCT CASE WHEN k_a THEN (DATEDIFF(:as_of, day)) DIV 7 END), "
        "REGEXP_REPLACE(REGEXP_REPLACE(s, '(?i)^re:', ''), '(?i)^x', '') FROM t"
    )


def test_a_replace_that_could_match_twice_is_refused() -> None:
    """DuckDB replaces the first match, Spark all of them: an unanchored pattern would mean two things."""
    with pytest.raises(DialectError, match="may match more than once"):
        dialect.render(sql.q("SELECT regexp_replace(s, 'a', 'b') FROM t"))


def test_a_global_replace_means_every_match_on_both_engines() -> None:
    """The 'g' flag asks DuckDB for every match, which is what Spark does: a follow-up subject folds its spaces."""
    tree = sql.q("SELECT regexp_replace(s, '\\s+', ' ', 'g') FROM t")
    assert dialect.render(tree) == "SELECT REGEXP_REPLACE(s, '\\\\s+', ' ') FROM t"


def test_a_distinct_count_with_a_filter_becomes_a_case() -> None:
    tree = sql.q("SELECT count(DISTINCT day // 7) FILTER (WHERE k_a) FROM t")
    assert dialect.render(tree) == "SELECT COUNT(DISTINCT CASE WHEN k_a THEN day DIV 7 END) FROM t"


def test_temp_tables_become_replaced_views_and_cited_activities_structs(rules: RuleSet) -> None:
    text = dialect.render(features.statements(rules)[0])
    assert text.startswith("CREATE OR REPLACE TEMPORARY VIEW `tl_base` AS SELECT")
    assert "STRUCT(" in text
    assert "struct_pack" not in text.lower()


def test_texts_use_spark_functions(rules: RuleSet) -> None:
    text = dialect.render(evaluate.statement(rules))
    assert "DATE_FORMAT(" in text
    assert "'d MMM yyyy'" in text
    assert "strftime" not in text.lower()
    plan_text = dialect.render(plan.statement())
    assert "ARRAY_SORT(SPLIT(" in plan_text


def test_an_update_is_not_a_spark_statement() -> None:
    with pytest.raises(DialectError, match="Update"):
        dialect.statement(sql.q("UPDATE tl_place SET new_since = NULL"))


def test_the_source_tree_is_left_as_it_was(rules: RuleSet) -> None:
    tree = evaluate.statement(rules)
    before = sql.render(tree)
    dialect.render(tree)
    assert sql.render(tree) == before
