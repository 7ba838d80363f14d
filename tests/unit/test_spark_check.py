"""An admin about to move a rule file to Spark runs `rules check --engine spark`: every statement the rules make is
rendered as Spark SQL (no Spark needed), and what cannot run there is reported at the rule text that made it.

tests/spark/test_check_runs.py hands the same statements to Spark's own parser and runs them, on a JVM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlglot import exp

from connector import sql
from connector.cli import main
from connector.config import EngineSection
from connector.engine import origin, plan
from connector.engine import spark as spark_engine
from connector.ruleset import compiler, lint_spark
from connector.ruleset.compiler import RuleSet
from tests.conftest import DEFAULT_RULES, ROOT

EVERY_CONSTRUCT = ROOT / "tests" / "spark" / "every_construct.yaml"


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["rules", "check", "--no-data", *args])
    return result.exit_code, result.output


def test_the_default_ladder_renders_every_statement_for_spark() -> None:
    code, out = check("--engine", "spark", str(DEFAULT_RULES))
    assert code == 0, out
    assert out.strip().endswith("passed. Rendered 18 statements as Spark SQL.")
    plain_code, plain = check(str(DEFAULT_RULES))
    assert plain_code == 0
    assert plain.strip() == "Checked 1 rule file: 0 errors, 0 warnings, 0 info; passed."  # no --engine: as before


def test_the_check_renders_what_a_spark_run_executes_in_its_order() -> None:
    rendered = lint_spark.render(compiler.load(DEFAULT_RULES))
    targets = [st.target for st in rendered.statements]
    # classify, features: which thank-you answered which input (`unthanked` answers its own input), then the rest
    assert targets[:7] == [
        "tl_act",
        "tl_base",
        "tl_answered_0_trig",
        "tl_answered_0_ans",
        "tl_answered_0",
        "tl_unans",
        "tl_feat",
    ]
    # The timeline: per-day counts, the periods of the `two_way_quarters` features, change days, the triggers of
    # `unthanked` (which answer answered which, as the features pass matched them) and the oldest open on every
    # change day, the states on
    # every change day (window frames, features, flags, criteria), the days held rungs drop, the rung stood on, and
    # the evaluation day's row; then evaluate.
    assert targets[7:-2] == [
        "tl_t_day",
        "tl_t_per0",
        "tl_t_pts",
        "tl_t_u0",
        "tl_t_uo0",
        "tl_t_q",
        "tl_t_drop",
        "tl_t_rung",
        "tl_timeline",
    ]
    assert targets[-2:] == ["tl_place", "tl_plan"]
    assert not rendered.refused
    assert all(st.params <= {"as_of"} for st in rendered.statements)


def test_rule_text_spark_would_read_otherwise_is_rendered_to_mean_the_same() -> None:
    """`${...}` in any text, backslashes in LIKE patterns, a pattern that is not a constant: all rendered."""
    code, out = check("--engine", "spark", str(EVERY_CONSTRUCT))
    assert code == 0, out
    texts = [st.text for st in lint_spark.render(compiler.load(EVERY_CONSTRUCT)).statements]
    joined = "\n".join(texts)
    assert "${" not in joined  # Spark would substitute ${env:HOME} with the home folder, in string literals too
    assert "{env:HOME}: Known. $' || '{env:HOME} $' || '{spark.sql.ansi.enabled} \\\\ $' || '{ $ { }'" in joined
    assert r"ILIKE '%C:\\\\temp%'" in joined  # one backslash in the rule: a literal backslash in Spark's LIKE
    assert r"ILIKE REPLACE(`Type`, '\\', '\\\\')" in joined  # a pattern from a column: escaped as it is read
    assert r"ILIKE REPLACE(('%$' || '{env:HOME}%'), '\\', '\\\\')" in joined  # pieces: no longer one constant


def test_a_construct_with_no_spark_rendering_is_reported_where_the_rule_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule language has no construct left that Spark cannot run: here a compiled condition is given one (an
    unanchored regexp_replace, which DuckDB applies once and Spark to every match) to show where it is reported."""
    rules_file = tmp_path / "ladder.yaml"
    rules_file.write_text(
        DEFAULT_RULES.read_text().replace(
            "when: unthanked IS NOT NULL", "when: unthanked IS NOT NULL AND outbound_90d >= 0"
        )
    )
    compile_located = compiler.compile_located

    def crafted(located: object) -> RuleSet:
        rules = compile_located(located)  # type: ignore[arg-type]
        when = rules.flags[0].compiled.expr
        column = next(c for c in when.find_all(exp.Column) if c.name == "f_outbound_90d")
        column.replace(
            exp.Length(this=exp.RegexpReplace(this=column.copy(), expression=sql.lit("a"), single_replace=True))
        )
        return rules

    monkeypatch.setattr(compiler, "compile_located", crafted)
    code, out = check("--engine", "spark", "--format", "json", str(rules_file))
    report = json.loads(out)
    assert code == 4
    assert report["ok"] is False
    (finding,) = [f for f in report["findings"] if "Spark" in f["message"]]
    text = rules_file.read_text()
    line = text[: text.index("outbound_90d >= 0")].count("\n") + 1
    col = text.index("outbound_90d >= 0") - text.rfind("\n", 0, text.index("outbound_90d >= 0"))
    assert (finding["path"], finding["line"], finding["col"]) == (str(rules_file), line, col)
    assert finding["severity"] == "error"
    assert "may match more than once" in finding["message"]


def test_a_construct_the_engine_made_on_its_own_is_reported_as_our_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = sql.q("CREATE OR REPLACE TEMP TABLE tl_plan AS SELECT regexp_replace(cid, 'a', 'b') AS cid FROM tl_place")
    monkeypatch.setattr(plan, "statement", lambda _fields=None: broken)
    findings, rendered = lint_spark.findings(compiler.load(DEFAULT_RULES))
    (finding,) = findings
    assert (finding.line, finding.col) == (1, 1)
    assert "engine's own plan statement" in finding.message
    assert "a trust-ladder bug to report" in finding.message
    assert rendered == 17  # every other statement still rendered


def test_every_condition_node_knows_the_rule_text_it_came_from() -> None:
    rules = compiler.load_text(DEFAULT_RULES.read_text())
    crit = rules.rungs[3].criteria[0]  # Faithful: relationship_days >= 365
    found = origin.find(crit.compiled.expr)
    assert found is not None
    assert found.loc == ("rungs", 3, "requires", 0, "when")
    literal = next(n for n in crit.compiled.expr.find_all(exp.Literal) if n.this == "365")
    assert origin.find(literal) == origin.Origin(("rungs", 3, "requires", 0, "when"), crit.when.index("365"))
    moved = sql.retarget(crit.compiled.expr, {"x": "y"})  # copies keep their tags
    assert origin.find(next(moved.find_all(exp.Literal))) is not None


def test_spark_sessions_take_spark_conf_but_never_over_the_settings_results_depend_on() -> None:
    engine = EngineSection(
        kind="spark", master="local[2]", spark_conf={"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8"}
    )
    settings = spark_engine.settings(engine)
    assert settings["spark.driver.memory"] == "6g"
    assert settings["spark.sql.shuffle.partitions"] == "8"  # over the local default of 16
    assert settings["spark.sql.variable.substitute"] == "false"
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.ansi.enabled"] == "true"
    assert settings["spark.sql.constraintPropagation.enabled"] == "false"  # planning, not results: spark_conf may
    kept = EngineSection(kind="spark", spark_conf={"spark.sql.constraintPropagation.enabled": "true"})
    assert spark_engine.settings(kept)["spark.sql.constraintPropagation.enabled"] == "true"
    cluster = spark_engine.settings(EngineSection(kind="spark", master="yarn"))
    assert "spark.sql.shuffle.partitions" not in cluster  # a cluster keeps its own defaults
    assert "spark.driver.memory" not in cluster
    local = spark_engine.settings(EngineSection(kind="spark", master="local[2]"))
    assert local["spark.driver.memory"] in {f"{g}g" for g in range(2, 9)}  # Spark's 1g runs out at 100,000 contacts


def test_the_placement_runs_without_whole_stage_code_generation_and_the_setting_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spark generates one Java method for the placement's stage and the JVM refuses it (over 64 KB): a Spark sync
    logged the failed compilation, an ERROR with hundreds of lines of stack trace, on every run. The placement
    runs interpreted from the start; every other statement runs as the session is set, and the setting is as it
    was after."""
    seen: dict[str, str | None] = {}
    register = spark_engine.SparkEngine.register

    def spy(self: spark_engine.SparkEngine, name: str, frame: Any) -> None:
        def checkpoint(*, eager: bool = True) -> Any:
            seen[name] = self.spark.conf.get("spark.sql.codegen.wholeStage", None)
            return frame

        monkeypatch.setattr(frame, "localCheckpoint", checkpoint, raising=False)
        register(self, name, frame)

    monkeypatch.setattr(spark_engine.SparkEngine, "register", spy)
    rendered = lint_spark.render(compiler.load(DEFAULT_RULES))
    assert not rendered.refused
    assert seen.pop("tl_place") == "false"
    assert seen and set(seen.values()) == {None}  # tl_act, the features, the timeline, tl_plan
    assert "tl_plan" in seen
