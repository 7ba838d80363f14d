"""`rules check --engine spark`: every statement a rule file makes, rendered as Spark SQL, without Spark.

The statements are the ones a Spark run executes, in its order: `SparkEngine.compute` itself runs against a
stand-in session that records each statement's text instead of running it, so the check cannot drift from the
engine (classify, features and their replay form for since dates, evaluate with its texts, plan). A construct the
dialect has no faithful rendering for raises DialectError on the tree; its origin tag (connector.engine.origin)
names the rule element and, inside a condition or a template, the offset of the part that made it, which the
rule file's positions turn into file:line:col. The text that renders is read back by sqlglot's Spark parser.

No pyspark, Java or data is needed. Proof that "the check passes" means "Spark runs it" is the test that hands
each recorded statement to Spark's own parser and runs the engine on a small org (tests/spark).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from connector import vocabulary
from connector.engine import relations as rel
from connector.engine.origin import Origin
from connector.engine.spark import SparkEngine
from connector.errors import DialectError, Finding
from connector.ruleset.compiler import RuleSet

CHECK_AS_OF = dt.date(2026, 1, 1)  # any date: it is a bound parameter, never part of a statement's text

_PASSES = {
    rel.CLASSIFIED.name: "classify",
    rel.BASE.name: "features",
    rel.UNANSWERED.name: "features",
    rel.FEATURES.name: "features",
    rel.PLACE.name: "evaluate",
    rel.PLAN.name: "plan",
}


@dataclass
class Statement:
    """One statement as Spark would be given it: its text, its named parameters, and the temp view its result
    becomes (None for a plain query)."""

    text: str
    params: frozenset[str]
    target: str | None = None


@dataclass
class Rendered:
    """What a Spark run of the rule set would execute, in order; and the statements that have no Spark
    rendering, with the reason."""

    statements: list[Statement] = field(default_factory=list)
    refused: list[tuple[str, DialectError]] = field(default_factory=list)  # (pass, why)


def render(rules: RuleSet) -> Rendered:
    """Run the Spark engine's sequence for `rules` against a recording stand-in session."""
    out = Rendered()
    engine = _Recorder(_Session(rules, out), rules, out)
    engine.compute(CHECK_AS_OF)
    return out


def findings(rules: RuleSet) -> tuple[list[Finding], int]:
    """Every construct of `rules` that cannot run on Spark, at its place in the rule file; and how many
    statements were rendered."""
    rendered = render(rules)
    found: dict[tuple[int, int, str], Finding] = {}
    for stage, exc in rendered.refused:
        f = _finding(rules, stage, exc)
        found.setdefault((f.line, f.col, str(exc)), f)  # the replay repeats its rule elements: first one only
    for st in rendered.statements:
        try:
            sqlglot.parse_one(st.text, read="spark")
        except SqlglotError as exc:
            stage = _stage(st.target)
            what = f"the {stage} statement does not read back as Spark SQL ({str(exc).splitlines()[0]})"
            f = _finding(rules, stage, DialectError(what))
            found.setdefault((f.line, f.col, what), f)
    return list(found.values()), len(rendered.statements)


def _finding(rules: RuleSet, stage: str, exc: DialectError) -> Finding:
    where = exc.origin
    if isinstance(where, Origin):
        return rules.source.finding(where.loc, f"cannot run on Spark: {exc}", offset=where.offset)
    return rules.source.finding(
        (),
        f"cannot run on Spark: {exc} (in the engine's own {stage} statement, not in this rule file's text: "
        "a trust-ladder bug to report)",
    )


def _stage(target: str | None) -> str:
    if target is None:
        return "query"
    return _PASSES.get(target, "history replay" if target.startswith("tl_h_") else target)


class _Recorder(SparkEngine):
    """The engine, with each statement that has no Spark rendering recorded and skipped instead of raised."""

    def __init__(self, spark: Any, rules: RuleSet, out: Rendered) -> None:
        super().__init__(spark, rules)
        self.out = out

    def run(self, tree: exp.Expr, params: Mapping[str, object] | None = None) -> Any:
        try:
            return super().run(tree, params)
        except DialectError as exc:
            target = tree.this.name if isinstance(tree, exp.Create) else None
            self.out.refused.append((_stage(target), exc))
            return _Frame([])


class _Frame:
    """A stand-in DataFrame: its columns, and the calls the engine makes to register it."""

    def __init__(self, columns: list[str], made_by: Statement | None = None) -> None:
        self.columns = columns
        self.made_by = made_by

    def localCheckpoint(self, *, eager: bool = True) -> _Frame:  # noqa: N802 - pyspark's name
        del eager
        return self

    def createOrReplaceTempView(self, name: str) -> None:  # noqa: N802 - pyspark's name
        if self.made_by is not None:
            self.made_by.target = name


class _Conf:
    """A stand-in for the session's runtime settings (the engine turns code generation off for a statement)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def unset(self, key: str) -> None:
        self.values.pop(key, None)


class _Session:
    """A stand-in SparkSession: `sql` records the text it is given; `table` knows the declared columns of the
    relations whose columns the engine reads (to spell out `* EXCLUDE` and rebuild `tl_place`)."""

    def __init__(self, rules: RuleSet, out: Rendered) -> None:
        self.out = out
        self.conf = _Conf()
        self.known = {
            "crm_activity": [*rel.ACTIVITIES.names, *vocabulary.activity_fields(), *(n for n, _ in rel.ACTIVITY_FACTS)],
            "crm_contact": [*rel.CONTACTS.names, *vocabulary.contact_fields()],
            rel.CLASSIFIED.name: [*rel.CLASSIFIED.names, *(rel.kind_col(k) for k in rules.kinds)],
            rel.PLACE.name: rel.PLACE.names,
        }

    def sql(self, text: str, args: Mapping[str, object] | None = None) -> _Frame:
        st = Statement(text, frozenset(args or {}))
        self.out.statements.append(st)
        return _Frame([], st)

    def table(self, name: str) -> _Frame:
        return _Frame(list(dict.fromkeys(self.known.get(name.strip("`"), []))))

    def createDataFrame(self, rows: object, schema: str) -> _Frame:  # noqa: N802 - pyspark's name
        del rows
        return _Frame([part.split()[0] for part in schema.split(",")])
