"""Pass 3: features -> flags -> rung -> stage since, next step and reason, for every contact in one statement.

Rungs are cumulative: a contact qualifies for a rung when it meets that rung's criteria and those of every rung
below. Promotion is immediate. A contact that no longer qualifies for the rung the CRM shows is *watched*: it
keeps its rung for `demotion_grace_days`, then drops one rung, and one more every `decay_every_days` while it
stays below, never under the rung it qualifies for. The watch (since when, from which rung) lives in the state
store and is passed in as `tl_watch`.

The reason text names criteria met and missing but no day-dependent numbers: otherwise every contact would
change every day as windows slide, and a no-change sync would not be a no-op. `explain` gives the numbers.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from connector.classify import as_of_sql
from connector.features import FEAT_TABLE
from connector.ruleset.compiler import AS_OF, RuleSet, Template
from connector.ruleset.expr import Type

PLACE_TABLE = "tl_place"
NEXT_STEP_MAX = 255  # Text(255) on the Contact


def _str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _date_text(col: str) -> str:
    """'2 Oct 2026': always with the year, so a cited date reads the same on every day it is shown (a
    year-less date would change every flagged contact's next step on 1 January)."""
    return f"strftime({col}, '%-d %b %Y')"


def template_sql(t: Template, rules: RuleSet) -> str:
    parts: list[str] = []
    for literal, name, attr, fallback in t.parts:
        if literal:
            parts.append(_str(literal))
        if name is None:
            continue
        f = rules.features[name]
        if attr == "subject":
            col = f'"{name}__subject"'
        elif f.type == Type.DATE:
            col = _date_text(f'"{name}"')
        elif f.type == Type.FLOAT:
            col = f'CAST(round("{name}", 1) AS VARCHAR)'
        else:
            col = f'CAST("{name}" AS VARCHAR)'
        parts.append(f"COALESCE(NULLIF({col}, ''), {_str(fallback if fallback is not None else '?')})")
    return "concat(" + ", ".join(parts or ["''"]) + ")"


def criterion_column(rung: int, index: int) -> str:
    return f'"c__{rung}__{index}"'


def flag_column(flag_id: str) -> str:
    return f'"flag__{flag_id}"'


def evaluate(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date) -> None:
    rungs = rules.rungs
    settings = rules.settings
    top = len(rungs) - 1

    flag_cols = [f"COALESCE({f.compiled.sql}, false) AS {flag_column(f.id)}" for f in rules.flags]
    open_flags = " + ".join(f"CAST({flag_column(f.id)} AS INTEGER)" for f in rules.flags) or "0"
    crit_cols = [
        f"COALESCE({c.compiled.sql}, false) AS {criterion_column(r.index, j)}"
        for r in rungs for j, c in enumerate(r.criteria)
    ]

    def meets(k: int) -> str:
        """Qualifies for rung k: its criteria and those of every rung below."""
        cols = [criterion_column(r.index, j) for r in rungs[1 : k + 1] for j in range(len(r.criteria))]
        return " AND ".join(cols) or "true"

    qualified = "CASE " + " ".join(f"WHEN {meets(k)} THEN {k}" for k in range(top, 0, -1)) + " ELSE 0 END"
    held = "CASE cur_stage " + " ".join(f"WHEN {_str(r.name)} THEN {r.index}" for r in rungs) + " ELSE NULL END"
    names = "CASE final " + " ".join(f"WHEN {r.index} THEN {_str(r.name)}" for r in rungs) + " END"

    def missing(k: int) -> str:
        """What rungs 1..k still need, as '; '-joined 'says' texts."""
        items = [f"CASE WHEN NOT {criterion_column(r.index, j)} THEN {_str(c.says)} END"
                 for r in rungs[1 : k + 1] for j, c in enumerate(r.criteria)]
        return f"concat_ws('; ', {', '.join(items)})" if items else "''"

    def met(k: int) -> str:
        items = [f"CASE WHEN {criterion_column(rungs[k].index, j)} THEN {_str(c.says)} END"
                 for j, c in enumerate(rungs[k].criteria)]
        return f"concat_ws('; ', {', '.join(items)})" if items else "''"

    reason_cases = []
    for r in rungs:
        text = f"{_str(r.name + ': ' + (r.means or ''))}"
        if r.index > 0:
            text += f" || ' Meets: ' || {met(r.index)} || '.'"
        if r.index < top:
            nxt = rungs[r.index + 1]
            text += f" || ' For {nxt.name} it still needs: ' || {missing(nxt.index)} || '.'"
        reason_cases.append(f"WHEN {r.index} THEN {text}")
    reason_normal = "CASE final " + " ".join(reason_cases) + " END"
    grace_cases = " ".join(
        f"WHEN {r.index} THEN {_str(f'Held at {r.name} during the demotion grace period, until ')} "
        f"|| strftime(w_since + {settings.demotion_grace_days}, '%Y-%m-%d') "
        f"|| ': it no longer meets ' || {missing(r.index)} || '.'"
        for r in rungs[1:]
    )
    decay_every = settings.decay_every_days
    decay_cases = " ".join(
        f"WHEN {r.index} THEN {_str(f'{r.name}, decaying: it no longer meets ')} || {missing(r.index)} "
        f"|| {_str(f', so it drops one rung every {decay_every} days since ')} "
        f"|| strftime(w_since + {settings.demotion_grace_days}, '%Y-%m-%d') || '.'"
        for r in rungs[1:]
    )
    reason = (f"CASE WHEN final > qualified AND in_grace THEN CASE final {grace_cases} END "
              f"WHEN final > qualified THEN CASE final {decay_cases} END ELSE {reason_normal} END")

    step_cases = [f"WHEN {flag_column(f.id)} THEN {template_sql(f.next_step, rules)}" for f in rules.flags]
    step_cases.append(f"WHEN final = {top} THEN {template_sql(rules.top_next_step, rules)}")
    for r in rungs[:-1]:
        nxt = rungs[r.index + 1]
        advice = (template_sql(nxt.next_step, rules) if nxt.next_step
                  else f"{_str(f'To reach {nxt.name}: ')} || {missing(nxt.index)}")
        step_cases.append(f"WHEN final = {r.index} THEN {advice}")
    next_step = f"left(CASE {' '.join(step_cases)} END, {NEXT_STEP_MAX})"

    flags_value = "NULLIF(concat_ws(';', " + ", ".join(
        f"CASE WHEN {flag_column(f.id)} THEN {_str(f.label)} END" for f in rules.flags
    ) + "), '')" if rules.flags else "NULL"

    grace = settings.demotion_grace_days
    # Past the grace period: one rung down, then one more per decay period; without decay, straight down to the
    # rung the contact qualifies for.
    steps_after_grace = (f"1 + ({AS_OF} - w_since - {grace}) // {decay_every}" if decay_every
                         else str(len(rungs)))
    sql = f"""
CREATE OR REPLACE TEMP TABLE {PLACE_TABLE} AS
WITH flagged AS (SELECT *, {', '.join(flag_cols) or 'NULL AS no_flags'} FROM {FEAT_TABLE}),
counted AS (SELECT *, {open_flags} AS open_flags FROM flagged),
judged AS (SELECT *, {', '.join(crit_cols) or 'NULL AS no_criteria'} FROM counted),
ranked AS (
  SELECT j.*, {qualified} AS qualified, {held} AS held, w.from_rung AS w_from_stored, w.failing_since AS w_since_stored
  FROM judged j LEFT JOIN tl_watch w ON w.cid = j.cid
),
watched AS (
  SELECT *,
    CASE WHEN w_from_stored IS NOT NULL AND w_from_stored >= held THEN w_from_stored ELSE held END AS w_from,
    CASE WHEN w_from_stored IS NOT NULL AND w_from_stored >= held THEN w_since_stored ELSE {AS_OF} END AS w_since
  FROM ranked
),
decided AS (
  SELECT *,
    CASE WHEN held IS NULL OR qualified >= held THEN qualified
         ELSE GREATEST(qualified, w_from - CASE WHEN {AS_OF} - w_since < {grace} THEN 0
                                               ELSE {steps_after_grace} END)
    END AS final
  FROM watched
),
graced AS (SELECT *, (final > qualified AND {AS_OF} - w_since < {grace}) AS in_grace FROM decided)
SELECT *,
  {names} AS new_stage,
  CASE WHEN final = held AND cur_since IS NOT NULL THEN cur_since ELSE {AS_OF} END AS new_since,
  {flags_value} AS new_flags,
  {next_step} AS new_next,
  {reason} AS new_reason
FROM graced
"""
    con.execute(sql.replace(AS_OF, as_of_sql(as_of)))
