"""Pass 3: features -> flags -> rung -> stage since, next step and reason, for every contact in one statement.

Rungs are cumulative: a contact qualifies for a rung when it meets that rung's criteria and those of every rung
below. Promotion is immediate. A contact that no longer qualifies for the rung the CRM shows is *watched*: it
keeps its rung for `demotion_grace_days`, then drops one rung, and one more every `decay_every_days` while it
stays below, never under the rung it qualifies for. The watch (since when, from which rung) lives in the state
store and is passed in as `tl_watch` (connector.engine.watch); a watch row dated after the evaluation date is not
read. `standing` is the rung the contact stands on before this evaluation: the CRM's, else the watch's (a hold the
history seeded on a first sync, connector.engine.history).

The reason text names criteria met and missing but no day-dependent numbers: otherwise every contact would
change every day as windows slide, and a no-change sync would not be a no-op. `explain` gives the numbers.
"""

from __future__ import annotations

import datetime as dt

import duckdb
from sqlglot import exp

from connector.engine import sql, texts
from connector.engine.relations import FEATURES, PLACE, WATCH, criterion_col, flag_col
from connector.ruleset.compiler import RuleSet

# The fixed shape of the pass; each $slot is a tree built from the rule set.
_SKELETON = """
WITH flagged AS (SELECT * FROM $features),
counted AS (SELECT *, $open_flags AS open_flags FROM flagged),
judged AS (SELECT * FROM counted),
ranked AS (
  SELECT j.*, $qualified AS qualified, $held AS held, w.from_rung AS w_from_stored, w.failing_since AS w_since_stored,
         COALESCE($held, w.from_rung) AS standing
  FROM judged j LEFT JOIN $watch w ON w.cid = j.cid AND w.failing_since <= $as_of
),
watched AS (
  SELECT *,
    CASE WHEN w_from_stored IS NOT NULL AND w_from_stored >= standing THEN w_from_stored ELSE standing END AS w_from,
    CASE WHEN w_from_stored IS NOT NULL AND w_from_stored >= standing THEN w_since_stored ELSE $as_of END AS w_since
  FROM ranked
),
decided AS (
  SELECT *,
    CASE WHEN standing IS NULL OR qualified >= standing THEN qualified
         ELSE GREATEST(qualified, w_from - CASE WHEN $as_of - w_since < $grace THEN 0 ELSE $steps_after_grace END)
    END AS final
  FROM watched
),
graced AS (SELECT *, (final > qualified AND $as_of - w_since < $grace) AS in_grace FROM decided),
texted AS (
  SELECT *,
    $new_stage AS new_stage,
    CASE WHEN final = held AND cur_since IS NOT NULL THEN cur_since ELSE $as_of END AS new_since,
    $new_flags AS new_flags,
    $new_next AS new_next_full,
    $new_reason AS new_reason_full
  FROM graced
)
SELECT *, $cut_next AS new_next, $cut_reason AS new_reason FROM texted
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
    settings = rules.settings
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
    grace = settings.demotion_grace_days
    every = settings.decay_every_days
    # Past the grace period: one rung down, then one more per decay period; without decay, straight down to the
    # rung the contact qualifies for.
    steps = (
        sql.q("1 + ($as_of - w_since - $grace) // $every", grace=grace, every=every) if every else sql.lit(len(rungs))
    )
    tree = sql.q(
        _SKELETON,
        features=sql.table(FEATURES.name),
        watch=sql.table(WATCH.name),
        open_flags=open_flags,
        qualified=qualified,
        held=held,
        grace=grace,
        steps_after_grace=steps,
        new_stage=texts.rung_name(rules, sql.col("final")),
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
    return sql.create_temp(PLACE.name, tree)


def evaluate(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date) -> None:
    sql.run(con, statement(rules), {"as_of": as_of})
