"""The engine's statements in Spark SQL, meaning what they mean on DuckDB.

The passes build DuckDB-flavoured sqlglot trees (connector.engine.sql). sqlglot's "spark" generator translates most
of them (struct_pack -> STRUCT, struct_extract -> field access, `//` -> DIV, strftime -> date_format, list_sort and
string_split -> array_sort and split, strpos -> locate, concat's NULL-skipping); the transforms here cover what it
does not, on trees, never on text:

- date - date: DuckDB gives whole days, Spark an INTERVAL. The subtraction becomes `datediff(a, b)` when both sides
  are dates (the evaluation date, a cast to DATE, or a column known to hold dates).
- regexp_replace(s, p, r, 'i'): sqlglot drops the flag; the pattern gets Java's inline `(?iu)`. DuckDB replaces the
  first match only and Spark every match, so a pattern that could match twice is refused (ours are anchored).
  Patterns (of regexp_replace and regexp_matches, which becomes RLIKE) are translated from RE2 to Java's syntax
  where the two read the same text apart (connector.engine.java_regex).
- LIKE and ILIKE: DuckDB has no escape character, Spark's is the backslash, so a pattern with a backslash would
  fail or match otherwise; every backslash in the pattern is doubled (a constant's text, or `replace()` around
  anything else).
- A string literal holding `${`: Spark substitutes `${name}` in the statement text before parsing, string literals
  included, reading configuration and environment variables (`${env:HOME}`). Rule text is untrusted and reaches
  SQL as literals, so such a literal is written as pieces joined with `||`, none holding `${` (and the session
  turns substitution off besides, connector.engine.spark). An identifier holding `${` is refused.
- count(DISTINCT x) FILTER (WHERE c) -> CAST(size(collect_set(CASE WHEN c THEN x END)) AS BIGINT): the same count
  (both ignore NULL), without relying on a Spark version's support of DISTINCT with FILTER, and without the Expand
  Spark plans for several distinct aggregates in one GROUP BY, which copies every input row once per distinct
  aggregate (the distinct_periods features: three of them made 4x the replay's rows).
- CREATE OR REPLACE TEMP TABLE: Spark has no temp tables and takes no parameter markers in a view's body, so a
  statement is split into the relation it makes and its query; the runner (connector.engine.spark) runs the query
  with its parameters and registers the result as a temp view, materialised once.

The evaluation date stays a bound parameter: `$as_of` renders as Spark's named marker `:as_of`, bound with
`spark.sql(text, args={"as_of": date})` (Spark 3.4+). The statement text is then the same on every date (one plan
shape, nothing of the value in the text), as on DuckDB.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlglot import exp

from connector.engine import java_regex, origin, sql
from connector.errors import DialectError

SPARK = "spark"

# The engine's own date columns (relations.py); the rule namespace's date features are added by the caller.
ENGINE_DATE_COLUMNS = frozenset({"day", "as_of", "w_since", "cur_since", "new_since", "failing_since", "LoggedDate"})


@dataclass(frozen=True)
class SparkStatement:
    """One engine statement for Spark: the relation it makes (None for a plain query), its query text, and the
    named parameters that text uses."""

    target: str | None
    text: str
    params: frozenset[str]


def _is_date(node: exp.Expr, dates: frozenset[str]) -> bool:
    if isinstance(node, exp.Paren):
        return _is_date(node.this, dates)
    if isinstance(node, exp.Placeholder):
        return node.name == sql.AS_OF_PARAM
    if isinstance(node, exp.Column):
        return node.name in dates
    if isinstance(node, exp.Cast):
        return bool(node.to.this == exp.DataType.Type.DATE)
    if isinstance(node, (exp.Add, exp.Sub)):
        return _is_date(node.this, dates) != _is_date(node.expression, dates)  # date +/- days
    if isinstance(node, (exp.Least, exp.Greatest, exp.Coalesce)):  # its arguments are all dates or NULL
        return any(_is_date(a, dates) for a in [node.this, *node.expressions])
    return False


def _single_match(pattern: str) -> bool:
    return pattern.startswith("^") or pattern.endswith("$")


def _constant(node: exp.Expr, what: str) -> str:
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise DialectError(f"{what} needs a constant pattern to be rendered for Spark")
    return str(node.this)


def _pieces(text: str) -> exp.Expr:
    """A string literal as pieces joined with ||, so that `${` never appears in the statement's text."""
    parts = text.split("${")
    pieces = [parts[0] + "$", *("{" + p + "$" for p in parts[1:-1]), "{" + parts[-1]]
    out: exp.Expr = exp.Literal.string(pieces[0])
    for piece in pieces[1:]:
        out = exp.DPipe(this=out, expression=exp.Literal.string(piece), safe=True)
    return exp.Paren(this=out)


def _like(node: exp.Like | exp.ILike) -> exp.Expr:
    """The same match with Spark's escape character (the backslash) escaped in the pattern."""
    pattern = node.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        if "\\" not in pattern.this:
            return node
        doubled: exp.Expr = exp.Literal.string(str(pattern.this).replace("\\", "\\\\"))
    else:
        doubled = exp.Anonymous(
            this="replace", expressions=[pattern.copy(), exp.Literal.string("\\"), exp.Literal.string("\\\\")]
        )
    out = type(node)(**node.args)
    out.set("expression", doubled)
    return out


def _transform(dates: frozenset[str]) -> Callable[[exp.Expr], exp.Expr]:
    def step(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Literal) and node.is_string and "${" in node.this:
            return _pieces(str(node.this))
        if isinstance(node, exp.Identifier) and "${" in node.name:
            raise DialectError(f"the name {node.name!r} holds '${{', which Spark would substitute")
        if isinstance(node, (exp.Like, exp.ILike)):
            return _like(node)
        if isinstance(node, exp.Sub) and _is_date(node.this, dates) and _is_date(node.expression, dates):
            return exp.DateDiff(this=node.this, expression=node.expression)
        if isinstance(node, exp.RegexpLike):
            if node.args.get("flag"):
                raise DialectError("regexp_matches with flags has no Spark rendering")
            text = java_regex.translate(_constant(node.expression, "regexp_matches"))
            return exp.RegexpLike(this=node.this, expression=exp.Literal.string(text))
        if isinstance(node, exp.RegexpReplace):
            pattern = _constant(node.expression, "regexp_replace")
            if node.args.get("single_replace") and not _single_match(pattern):
                raise DialectError(
                    f"regexp_replace pattern {pattern!r} may match more than once: DuckDB "
                    "replaces the first match, Spark every match"
                )
            mods = node.args.get("modifiers")
            flags = mods.this if isinstance(mods, exp.Literal) else ""
            if set(flags) - {"i"}:
                raise DialectError(f"regexp_replace flags {flags!r} have no Spark rendering")
            text = java_regex.translate(pattern, case_insensitive="i" in flags)
            return exp.RegexpReplace(
                this=node.this, expression=exp.Literal.string(text), replacement=node.args.get("replacement")
            )
        if (
            isinstance(node, exp.Filter)
            and isinstance(node.this, exp.Count)
            and isinstance(node.this.this, exp.Distinct)
        ):
            distinct = node.this.this
            cond = node.expression.this
            values = [sql.case([(cond.copy(), v.copy())]) for v in distinct.expressions]
            if len(values) == 1:
                return exp.cast(exp.ArraySize(this=exp.ArrayUniqueAgg(this=values[0])), exp.DataType.Type.BIGINT)
            return exp.Count(this=exp.Distinct(expressions=values))
        return node

    return step


def to_spark(tree: exp.Expr, date_columns: Iterable[str] = ()) -> exp.Expr:
    """The same statement as a tree Spark's generator renders faithfully (a copy; `tree` is left as it is)."""
    dates = ENGINE_DATE_COLUMNS | frozenset(date_columns)
    step = _transform(dates)
    out = tree.copy()
    # Children before parents (sqlglot's own transform does not descend into a replaced node): a rewritten node
    # is built from children that are already rewritten, so nested constructs are all translated.
    for node in reversed(list(out.dfs())):
        try:
            new = step(node)
        except DialectError as exc:
            exc.origin = exc.origin or origin.find(node)  # the rule text that made the node, for `rules check`
            raise
        if new is not node:
            if origin.TAG in node.meta:
                new.meta.setdefault(origin.TAG, node.meta[origin.TAG])
            if node is out:
                out = new
            else:
                node.replace(new)
    return out


def render(tree: exp.Expr, date_columns: Iterable[str] = ()) -> str:
    """Spark SQL text of a statement. A CREATE TEMP TABLE renders as CREATE OR REPLACE TEMPORARY VIEW (for reading;
    the runner uses `statement`, because Spark refuses parameter markers inside a view)."""
    out = to_spark(tree, date_columns)
    if isinstance(out, exp.Create) and out.args.get("kind") == "TABLE":
        out.set("kind", "VIEW")
        out.set("replace", True)  # noqa: FBT003 - sqlglot's arg setter
    return _sql(out)


def statement(tree: exp.Expr, date_columns: Iterable[str] = ()) -> SparkStatement:
    """Split a statement into the relation it makes and the query Spark runs for it."""
    out = to_spark(tree, date_columns)
    target: str | None = None
    if isinstance(out, exp.Create):
        if out.args.get("kind") != "TABLE" or not isinstance(out.expression, exp.Query):
            raise DialectError(f"only CREATE TEMP TABLE ... AS a query runs on Spark, not: {_sql(out)[:80]}")
        target = out.this.name
        out = out.expression
    elif not isinstance(out, exp.Query):
        raise DialectError(f"{type(out).__name__} statements do not run on Spark temp views: {_sql(out)[:80]}")
    params = frozenset(p.name for p in out.find_all(exp.Placeholder))
    return SparkStatement(target, _sql(out), params)


def _sql(tree: exp.Expr) -> str:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        text = tree.sql(dialect=SPARK)
    finally:
        sys.setrecursionlimit(limit)
    if "${" in text:  # a guard: the literals and names holding it were rewritten or refused above
        raise DialectError("the statement's text holds '${', which Spark would substitute")
    return text
