"""Pass 3: features -> flags -> rung -> stage since, next step and reason, for every contact in one statement.

Rungs are cumulative: a contact qualifies for a rung when it meets that rung's criteria and those of every rung
below. Which rung it stands on, since when, whether the demotion grace holds it and until when, and since when each
flag is open all come from its timeline (`tl_timeline`, connector.engine.timeline), which reads the same history
under the same rules: promotion is immediate, a rung not met any more is kept for `demotion_grace_days`, then drops
one rung every `decay_every_days`. Nothing here depends on what an earlier run saved or wrote.

The reason text names criteria met and missing but no day-dependent numbers: otherwise every contact would
change every day as windows slide, and a no-change sync would not be a no-op. `explain` gives the numbers.
"""

from __future__ import annotations

import datetime as dt

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine import texts
from connector.engine.relations import FEATURES, PLACE, TIMELINE, criterion_col, flag_col, flag_since_col
from connector.ruleset.compiler import RuleSet

# The fixed shape of the pass; each $slot is a tree built from the rule set.
_SKELETON = """
WITH flagged AS (SELECT * FROM $features),
counted AS (SELECT *, $open_flags AS open_flags FROM flagged),
judged AS (SELECT * FROM counted),
ranked AS (
  SELECT j.*, $qualified AS qualified, $held AS held, t.final AS t_final, t.in_grace AS t_in_grace,
         t.since AS t_since, t.held_until AS t_held_until, t.next_change AS next_change, t.previous AS t_previous
  FROM judged j LEFT JOIN $timeline t ON t.cid = j.cid
),
decided AS (SELECT *, COALESCE(t_final, qualified) AS final FROM ranked),
graced AS (
  SELECT *, (final > qualified AND COALESCE(t_in_grace, false)) AS in_grace,
         CASE WHEN final > qualified THEN t_held_until END AS held_until
  FROM decided
),
texted AS (
  SELECT *,
    $new_stage AS new_stage,
    CASE WHEN t_since IS NOT NULL THEN t_since WHEN final = held AND cur_since IS NOT NULL THEN cur_since
         ELSE $as_of END AS new_since,
    $new_flags AS new_flags,
    $new_next AS new_next_full,
    $new_reason AS new_reason_full
  FROM graced
)
SELECT *, $cut_next AS new_next, $cut_reason AS new_reason, held_until AS new_held_until,
       $new_previous AS new_previous
FROM texted
"""


def _coalesced(tree: exp.Expr, name: str) -> exp.Expr:
    return sql.alias(exp.Coalesce(this=tree.copy(), expressions=[exp.false()]), name)


def _add_columns(tree: exp.Expr, cte: str, columns: list[exp.Expr]) -> None:
    """Append computed columns to one CTE of the skeleton (its `SELECT *` list)."""
    for node in tree.find_all(exp.CTE):
        if node.alias == cte:
            body = node.this
            assert isinstance(body, exp.Select)
            body.select(*columns, append=True, copy=False)
            return
    raise AssertionError(f"no CTE {cte}")


def statement(rules: RuleSet, *, texts_too: bool = True) -> exp.Expr:
    """The placement; without `texts_too` the flags, next step and reason are left NULL (a history replay needs
    only the rung, and the texts are the costly part)."""
    rungs = rules.rungs
    top = len(rungs) - 1

    flags = [(sql.col(flag_col(f.id)), f) for f in rules.flags]
    open_flags: exp.Expr = sql.lit(0)
    for c, _ in flags:
        open_flags = exp.Add(this=open_flags, expression=exp.cast(c.copy(), "INTEGER"))
    # Rung k is met when its criteria and all those below hold: one flat LEAST over the criteria columns.
    crit = [[sql.col(criterion_col(r.index, j)) for j in range(len(r.criteria))] for r in rungs]
    whens = [
        (sql.all_of(c.copy() for r in rungs[1 : k + 1] for c in crit[r.index]), sql.lit(k)) for k in range(top, 0, -1)
    ]
    qualified = sql.case(whens, sql.lit(0))
    held = exp.Case(this=sql.col("cur_stage"), ifs=[exp.If(this=sql.lit(r.name), true=sql.lit(r.index)) for r in rungs])
    tree = sql.q(
        _SKELETON,
        features=sql.table(FEATURES.name),
        timeline=sql.table(TIMELINE.name),
        open_flags=open_flags,
        qualified=qualified,
        held=held,
        new_stage=texts.rung_name(rules, sql.col("final")),
        new_previous=texts.rung_name(rules, sql.col("t_previous")),
        new_flags=texts.flags_value([(c, f.label) for c, f in flags]) if texts_too else exp.Null(),
        new_next=texts.next_step(rules, [(c, f.next_step) for c, f in flags]) if texts_too else exp.Null(),
        new_reason=texts.reason(rules) if texts_too else exp.Null(),
        cut_next=texts.cut(sql.col("new_next_full"), texts.NEXT_STEP_MAX),
        cut_reason=texts.cut(sql.col("new_reason_full"), texts.REASON_MAX),
    )
    _add_columns(tree, "flagged", [_coalesced(f.compiled.expr, flag_col(f.id)) for f in rules.flags])
    _add_columns(
        tree,
        "judged",
        [_coalesced(c.compiled.expr, criterion_col(r.index, j)) for r in rungs for j, c in enumerate(r.criteria)],
    )
    _add_columns(tree, "ranked", [sql.col(flag_since_col(f.id), "t") for f in rules.flags])
    return sql.create_temp(PLACE.name, tree)


def evaluate(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date) -> None:
    sql.run(con, rules.memo.keep("evaluate", lambda: sql.rendered(statement(rules))), {"as_of": as_of})
