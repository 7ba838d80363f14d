"""The engine's statements in Spark SQL, meaning what they mean on DuckDB.

The passes build DuckDB-flavoured sqlglot trees (connector.sql). sqlglot's "spark" generator translates most
of them (struct_pack -> STRUCT, struct_extract -> field access, `//` -> DIV, strftime -> date_format, list_sort and
string_split -> array_sort and split, strpos -> locate, concat's NULL-skipping); the transforms here cover what it
does not, on trees, never on text:

- date - date: DuckDB gives whole days, Spark an INTERVAL. The subtraction becomes `datediff(a, b)` when both sides
  are dates (the evaluation date, a cast to DATE, or a column known to hold dates).
- regexp_replace(s, p, r, 'i'): sqlglot drops the flag; the pattern gets Java's inline `(?iu)`. DuckDB replaces the
  first match only and Spark every match, so a pattern that could match twice is refused (ours are anchored)
  unless the 'g' flag asks DuckDB for every match too.
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
- ASOF LEFT JOIN o ON keys AND i.x > o.y (the activity views' "latest outgoing email before this incoming one"):
  Spark has no as-of join. `o` gets the next larger `y` of its key group (`LEAD`), and a plain join keeps the one
  row whose [y, next y) range holds `x`: the same single match, and a hash join on the keys.
- TRY_CAST built as a tree (not parsed from text): sqlglot renders it as CAST for Spark, which in ANSI mode fails
  on a value that does not convert where DuckDB gives NULL (a warehouse date stored as '05/12/2024', a ratio out
  of BIGINT's range); it is marked safe, which renders TRY_CAST.
- regexp_full_match(s, p) -> s RLIKE '^(?:p)\\z' (RLIKE finds a match anywhere; the pattern as java_regex spells it).
- list(x ORDER BY x)[a:b] (a sample of Ids) -> slice(array_sort(collect_list(x)), a, b - a + 1).
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

from connector import sql
from connector.engine import java_regex, origin
from connector.errors import DialectError

SPARK = "spark"

# The engine's own date columns (relations.py); the rule namespace's date features are added by the caller.
ENGINE_DATE_COLUMNS = frozenset(
    {
        "day",
        "as_of",
        "w_since",
        "cur_since",
        "new_since",
        "cur_held_until",
        "new_held_until",
        "held_until",
        "failing_since",
        "LoggedDate",
    }
)


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
        if isinstance(node, exp.TryCast) and not node.args.get("safe"):
            return exp.TryCast(**{**node.args, "safe": True})
        if isinstance(node, exp.Sub) and _is_date(node.this, dates) and _is_date(node.expression, dates):
            return exp.DateDiff(this=node.this, expression=node.expression)
        if isinstance(node, exp.RegexpLike):
            if node.args.get("flag"):
                raise DialectError("regexp_matches with flags has no Spark rendering")
            text = java_regex.translate(_constant(node.expression, "regexp_matches"))
            return exp.RegexpLike(this=node.this, expression=exp.Literal.string(text))
        if isinstance(node, exp.RegexpReplace):
            pattern = _constant(node.expression, "regexp_replace")
            mods = node.args.get("modifiers")
            flags = mods.this if isinstance(mods, exp.Literal) else ""
            if node.args.get("single_replace") and "g" not in flags and not _single_match(pattern):
                raise DialectError(
                    f"regexp_replace pattern {pattern!r} may match more than once: DuckDB "
                    "replaces the first match, Spark every match"
                )
            if set(flags) - {"i", "g"}:
                raise DialectError(f"regexp_replace flags {flags!r} have no Spark rendering")
            text = java_regex.translate(pattern, case_insensitive="i" in flags)
            return exp.RegexpReplace(
                this=node.this, expression=exp.Literal.string(text), replacement=node.args.get("replacement")
            )
        if isinstance(node, exp.Join) and node.args.get("method") == "ASOF":
            return _asof_join(node)
        if isinstance(node, exp.RegexpFullMatch):
            return _full_match(node)
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Slice):
            return _slice(node.this, node.expressions[0])
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
            return _sorted_list(node.this)
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


ASOF_BOUND = "_asof_bound"  # the column the as-of rewrite adds to the joined relation
# An as-of condition `outer OP inner` and the inner rows it matches: the nearest `inner` below `outer` (> and >=, the
# range up to the next value, LEAD) or above it (< and <=, the range down to the previous one, LAG).
_ASOF_BOUNDS: dict[type[exp.Expr], tuple[type[exp.Func], type[exp.Expr]]] = {
    exp.GT: (exp.Lead, exp.LTE),
    exp.GTE: (exp.Lead, exp.LT),
    exp.LT: (exp.Lag, exp.GTE),
    exp.LTE: (exp.Lag, exp.GT),
}
_FLIPPED: dict[type[exp.Expr], type[exp.Expr]] = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}


def _asof_join(join: exp.Join) -> exp.Join:
    """`ASOF [LEFT] JOIN o ON keys AND outer OP o.y` as a plain join on the keys that keeps, per outer row, the one
    row of `o` DuckDB's as-of join takes: the nearest `o.y` on the right side of `outer` (ties: one of them)."""
    inner = join.this
    alias = inner.alias_or_name
    parent = join.parent
    if isinstance(parent, exp.Select) and any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star) and e.table == alias)
        for e in parent.expressions
    ):
        raise DialectError(f"an as-of join whose select list takes every column of {alias} has no Spark rendering")
    conjuncts = list(join.args["on"].flatten()) if isinstance(join.args["on"], exp.And) else [join.args["on"]]

    def mine(e: exp.Expr) -> bool:
        return isinstance(e, exp.Column) and e.table == alias

    ordered = [c for c in conjuncts if type(c) in _ASOF_BOUNDS]
    keys = [c for c in conjuncts if isinstance(c, exp.EQ) and (mine(c.this) or mine(c.expression))]
    if len(ordered) != 1 or len(keys) != len(conjuncts) - 1:
        raise DialectError("an as-of join needs equality keys and one ordering condition to run on Spark")
    (cond,) = ordered
    op, outer, column = type(cond), cond.this, cond.expression
    if mine(outer) and not mine(column):
        op, outer, column = _FLIPPED[op], column, outer
    if not mine(column) or mine(outer):
        raise DialectError("an as-of join's ordering condition must compare a column of each side")
    step, bound_op = _ASOF_BOUNDS[op]
    partition = [k.this if mine(k.this) else k.expression for k in keys]
    window = exp.Window(
        this=step(this=column.copy()),
        partition_by=[p.copy() for p in partition],
        order=exp.Order(expressions=[exp.Ordered(this=column.copy(), nulls_first=False)]),
    )
    widened = exp.select(exp.Column(this=exp.Star(), table=sql.ident(alias)), sql.alias(window, ASOF_BOUND)).from_(
        inner.copy()
    )
    bound = sql.col(ASOF_BOUND, alias)
    within = exp.or_(exp.Is(this=bound, expression=exp.Null()), bound_op(this=outer.copy(), expression=bound.copy()))
    return exp.Join(
        this=widened.subquery(alias),
        side=join.args.get("side"),
        on=exp.and_(*[c.copy() for c in conjuncts], exp.paren(within)),
    )


def _full_match(node: exp.RegexpFullMatch) -> exp.Expr:
    pattern = node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string) or node.args.get("options"):
        raise DialectError("regexp_full_match needs a constant pattern and no options to be rendered for Spark")
    text = java_regex.translate(f"^(?:{pattern.this})$")  # anchored: RLIKE finds a match anywhere
    return exp.RegexpLike(this=node.this, expression=exp.Literal.string(text))


def _slice(array: exp.Expr, bounds: exp.Slice) -> exp.Expr:
    """DuckDB's `list[a:b]` (1-based, both ends included) as Spark's `slice(list, a, length)`."""
    start, end = bounds.this, bounds.expression
    if not (isinstance(start, exp.Literal) and isinstance(end, exp.Literal) and start.is_int and end.is_int):
        raise DialectError("a list slice needs constant bounds to be rendered for Spark")
    first, last = int(start.this), int(end.this)
    if first < 1 or last < first:
        raise DialectError(f"the list slice [{first}:{last}] has no Spark rendering")
    return exp.ArraySlice(this=array, start=sql.lit(first), end=sql.lit(last - first + 1), is_length=True)


def _sorted_list(order: exp.Order) -> exp.Expr:
    """`list(x ORDER BY x)` as `array_sort(collect_list(x))`: the same list (collect_list leaves NULLs out)."""
    value = order.this
    keys = order.expressions
    if len(keys) != 1 or keys[0].this != value or keys[0].args.get("desc"):
        raise DialectError("only a list sorted by its own values, ascending, has a Spark rendering")
    return exp.ArraySort(this=exp.ArrayAgg(this=value), nulls_first=exp.false())


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
