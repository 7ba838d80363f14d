"""Every engine statement renders as Spark SQL that Spark's grammar reads, and the constructs sqlglot would get
wrong on its own are rewritten on the tree. No JVM needed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from connector import sql
from connector.engine import classify, dialect, evaluate, features, java_regex, plan, texts
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
    assert dialect.render(tree) == "SELECT REGEXP_REPLACE(s, '(?iu)^re:', '') FROM t"


def test_nested_constructs_are_all_translated() -> None:
    tree = sql.q(
        "SELECT count(DISTINCT ($as_of - day) // 7) FILTER (WHERE k_a), "
        "regexp_replace(regexp_replace(s, '^re:', '', 'i'), '^x', '', 'i') FROM t"
    )
    assert dialect.render(tree) == (
        "SELECT CAST(SIZE(COLLECT_SET(CASE WHEN k_a THEN (DATEDIFF(:as_of, day)) DIV 7 END)) AS BIGINT), "
        "REGEXP_REPLACE(REGEXP_REPLACE(s, '(?iu)^re:', ''), '(?iu)^x', '') FROM t"
    )


def test_a_replace_that_could_match_twice_is_refused() -> None:
    """DuckDB replaces the first match, Spark all of them: an unanchored pattern would mean two things."""
    with pytest.raises(DialectError, match="may match more than once"):
        dialect.render(sql.q("SELECT regexp_replace(s, 'a', 'b') FROM t"))


def test_a_global_replace_means_every_match_on_both_engines() -> None:
    """The 'g' flag asks DuckDB for every match, which is what Spark does: a follow-up subject folds its spaces
    (RE2's \\s written as Java reads it)."""
    tree = sql.q("SELECT regexp_replace(s, '\\s+', ' ', 'g') FROM t")
    assert dialect.render(tree) == "SELECT REGEXP_REPLACE(s, '[\\\\t\\\\n\\\\f\\\\r ]+', ' ') FROM t"


def test_a_distinct_count_with_a_filter_becomes_the_size_of_a_set() -> None:
    """Several count(DISTINCT) in one GROUP BY make Spark copy every row once per distinct aggregate (Expand)."""
    tree = sql.q("SELECT count(DISTINCT day // 7) FILTER (WHERE k_a) FROM t")
    assert dialect.render(tree) == "SELECT CAST(SIZE(COLLECT_SET(CASE WHEN k_a THEN day DIV 7 END)) AS BIGINT) FROM t"


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


def test_text_holding_a_spark_variable_reference_is_never_one_literal() -> None:
    """Spark substitutes `${...}` in a statement's text, inside string literals too: `${env:HOME}` would become the
    home folder. Rule text is untrusted, so no literal of it reaches Spark in one piece."""
    tree = sql.select(sql.alias(sql.lit("costs ${env:HOME} and ${x}"), "t"), from_="t")
    assert dialect.render(tree) == "SELECT ('costs $' || '{env:HOME} and $' || '{x}') AS `t` FROM `t`"


def test_a_name_holding_a_spark_variable_reference_is_refused() -> None:
    with pytest.raises(DialectError, match="Spark would substitute"):
        dialect.render(sql.select(sql.col("a${env:HOME}"), from_="t"))


def test_like_patterns_escape_sparks_escape_character() -> None:
    """DuckDB's LIKE has no escape character; Spark's is the backslash."""
    tree = sql.q("SELECT s ILIKE '%C:\\temp%', s ILIKE p, NOT s ILIKE 'a_b%' FROM t")
    assert dialect.render(tree) == (
        "SELECT s ILIKE '%C:\\\\\\\\temp%', s ILIKE REPLACE(p, '\\\\', '\\\\\\\\'), NOT s ILIKE 'a_b%' FROM t"
    )


@pytest.mark.parametrize(
    ("re2", "java"),
    [
        ("\\s+\\S*$", "[\\t\\n\\f\\r ]+[^\\t\\n\\f\\r ]*\\z"),  # RE2's \s has no vertical tab; Java's $ skips a last \n
        ("^(re|fwd?)\\s*:", "^(re|fwd?)[\\t\\n\\f\\r ]*:"),
        ("a.b[.\\s]", "a[^\\n]b[.\\t\\n\\f\\r ]"),  # Java's . also stops at \r and \u2028
        ("(\\[\\d+\\])?", "(\\[\\d+\\])?"),
        ("[]x]", "[\\]x]"),
    ],
)
def test_regular_expressions_are_written_as_java_reads_them(re2: str, java: str) -> None:
    assert java_regex.translate(re2) == java


@pytest.mark.parametrize("pattern", ["\\bword", "(?i)x", "[a[b]]", "[a&&b]", "\\p{L}", "[a", "a\\"])
def test_regular_expressions_java_reads_apart_are_refused(pattern: str) -> None:
    with pytest.raises(DialectError):
        java_regex.translate(pattern)


def test_a_date_chosen_among_dates_is_a_date() -> None:
    tree = sql.q("SELECT CAST((GREATEST(NULL, f_a) - LEAST(f_b, NULL)) AS BIGINT) FROM t")
    assert (
        dialect.render(tree, ["f_a", "f_b"])
        == "SELECT CAST((DATEDIFF(GREATEST(NULL, f_a), LEAST(f_b, NULL))) AS BIGINT) FROM t"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.15, "0.2"),
        (0.25, "0.3"),
        (-0.04, "0.0"),
        (-0.06, "-0.1"),
        (2.0, "2.0"),
        (12345678.94, "12345678.9"),
        (1e20, None),
        (None, None),
    ],
)
def test_a_decimal_number_is_written_by_integer_arithmetic(value: float | None, text: str | None) -> None:
    """The engines' own round(x, 1) and number-to-text disagree (0.15: DuckDB 0.1, Spark 0.2; 1.2E7 on Spark)."""
    con = duckdb.connect()
    tree = exp.select(texts.decimal_text(exp.cast(sql.lit(value), "DOUBLE")))
    assert sql.run(con, tree).fetchone() == (text,)
